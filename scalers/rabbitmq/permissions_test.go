package rabbitmq_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/internal/dev/testenv"
	"github.com/ebbscale/ebb/scalers/rabbitmq"
)

// A user the server knows but that may not do what the trigger needs is ErrAuthorization, with a hint:
// no permission on the vhost (AMQP and http), or (http) no monitoring or management tag.
func TestAuthorization(t *testing.T) {
	b := requireBroker(t)
	vhost := b.vhost()
	ch := channel(t, b.conn(vhost))
	declare(t, ch, "q", nil)
	user := testenv.UniqueName(t, "ebb-test-user")
	setUser := func(tags string) {
		b.api(http.MethodPut, "/api/users/"+url.PathEscape(user), map[string]string{"password": "pw", "tags": tags}, nil)
	}
	setUser("")
	t.Cleanup(func() { b.api(http.MethodDelete, "/api/users/"+url.PathEscape(user), nil, nil) })
	as := func(u *url.URL) string {
		c := *u
		c.User = url.UserPassword(user, "pw")
		c.Path, c.RawPath = "/"+vhost, "/"+url.PathEscape(vhost)
		return c.String()
	}
	check := func(name, host, mention string) {
		t.Helper()
		pool := rabbitmq.NewPool()
		defer pool.Close()
		s := newTrigger(t, pool.New, host, map[string]string{"queueName": "q"}, time.Second)
		_, err := sampleErr(t, s)
		isErr(t, err, rabbitmq.ErrAuthorization)
		if !strings.Contains(err.Error(), mention) {
			t.Errorf("%s: error %q does not mention %q", name, err, mention)
		}
	}
	check("http-no-tag", as(b.httpURL), "monitoring")
	check("amqp-no-permission", as(b.amqpURL), "access to vhost")
	setUser("monitoring")
	check("http-no-permission", as(b.httpURL), "not authorised to access virtual host")
}
