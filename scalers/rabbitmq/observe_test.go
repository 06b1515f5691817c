package rabbitmq

import "testing"

// The request label names the management API resource, never a vhost or queue, so it stays bounded.
func TestAPIResource(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{name: "queue-list", path: "/api/queues/%2F", want: "/api/queues"},
		{name: "queue-list-decoded-vhost", path: "/api/queues//", want: "/api/queues"},
		{name: "one-queue", path: "/api/queues/shop/orders", want: "/api/queues"},
		{name: "overview", path: "/api/overview", want: "/api/overview"},
		{name: "behind-a-proxy-prefix", path: "/rabbitmq/api/queues/shop", want: "/api/queues"},
		{name: "api-root", path: "/api/", want: "/api"},
		{name: "not-the-api", path: "/metrics", want: "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiResource(tc.path); got != tc.want {
				t.Errorf("apiResource(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}
