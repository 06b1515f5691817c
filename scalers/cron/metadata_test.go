package cron

import (
	"strings"
	"testing"
)

// TestParseMetadata: KEDA's keys; every rejection names its key and says what to do.
func TestParseMetadata(t *testing.T) {
	valid := func(kv ...string) map[string]string {
		m := map[string]string{"timezone": "Europe/Berlin", "start": "0 9 * * 1-5", "end": "0 17 * * 1-5", "desiredReplicas": "4"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		md      map[string]string
		wantErr []string // substrings of the error, each naming its key
	}{
		{name: "valid", md: valid()},
		{name: "utc", md: valid("timezone", "UTC")},
		{name: "spaces-and-names", md: valid("start", " 0  9 * JAN-DEC MON-FRI ", "end", "0 17 * * FRI")},
		{name: "missing-everything", md: map[string]string{}, wantErr: []string{"timezone: is required", "start: is required", "end: is required", "desiredReplicas: is required"}},
		{name: "unknown-zone", md: valid("timezone", "Europe/Berln"), wantErr: []string{`timezone: unknown time zone "Europe/Berln": name an IANA zone`}},
		{name: "local-zone", md: valid("timezone", "Local"), wantErr: []string{`timezone: "Local" is the controller's own time zone`}},
		{name: "four-fields", md: valid("start", "0 9 * *"), wantErr: []string{`start: "0 9 * *" is not a five-field cron schedule`}},
		{name: "six-fields", md: valid("end", "0 0 17 * * 1-5"), wantErr: []string{`end: "0 0 17 * * 1-5" is not a five-field cron schedule`}},
		{name: "out-of-range", md: valid("start", "0 24 * * *"), wantErr: []string{`start: "0 24 * * *" is not a five-field cron schedule`, "above maximum (23)"}},
		{name: "descriptor", md: valid("start", "@daily"), wantErr: []string{`start: "@daily" is a descriptor: write five fields`}},
		{name: "own-zone", md: valid("end", "TZ=UTC 0 17 * * *"), wantErr: []string{"end: \"TZ=UTC 0 17 * * *\" sets a time zone of its own: set the trigger's timezone key"}},
		{name: "never-fires", md: valid("start", "0 9 31 4 *"), wantErr: []string{`start: "0 9 31 4 *" never fires`}},
		{name: "zero-replicas", md: valid("desiredReplicas", "0"), wantErr: []string{"desiredReplicas: must be at least 1", "set minReplicas: 0"}},
		{name: "negative-replicas", md: valid("desiredReplicas", "-2"), wantErr: []string{"desiredReplicas: must be at least 1"}},
		{name: "not-a-number", md: valid("desiredReplicas", "four"), wantErr: []string{`desiredReplicas: must be an integer, got "four"`}},
		{name: "start-equals-end", md: valid("end", "0 9 * * MON-FRI"), wantErr: []string{`end is the same schedule as start ("0 9 * * 1-5")`, "set minReplicas"}},
		{name: "end-always-a-start", md: valid("start", "0 * * * *", "end", "0 0 * * *"), wantErr: []string{`end ("0 0 * * *") fires only at minutes start ("0 * * * *") also names`}},
		{name: "typo", md: valid("desiredReplica", "3"), wantErr: []string{`desiredReplica: unknown key (did you mean "desiredReplicas"?)`}},
		{name: "every-problem-at-once", md: valid("timezone", "Mars/Olympus", "start", "x", "desiredReplicas", "0"), wantErr: []string{"timezone:", "start:", "desiredReplicas:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewType().New(configFor(tt.md))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
