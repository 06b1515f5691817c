package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// RabbitMQAPI calls RabbitMQ's management API at base with base's credentials, sending in as JSON and
// decoding a JSON answer into out (each when not nil). An answer of 300 or above fails the test, except
// 404 (so a cleanup may delete what is gone).
func RabbitMQAPI(t testing.TB, base *url.URL, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	u := *base
	u.User = nil
	req, err := http.NewRequestWithContext(context.Background(), method, strings.TrimSuffix(u.String(), "/")+path, body)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := base.User.Password()
	req.SetBasicAuth(base.User.Username(), pw)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("management API: %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("management API: %s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("management API: %s %s: %v", method, path, err)
		}
	}
}
