package metrics

import "testing"

func TestRouteLabel(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"GET /api/v1/customers/{id}", "/api/v1/customers/{id}"},
		{"DELETE /api/v1/shares/{id}", "/api/v1/shares/{id}"},
		{"/api/", "/api/"},
		{"GET /{$}", "/{$}"},
		{"GET /static/", "/static/"},
		{"GET example.com/x/{id}", "/x/{id}"},
		{"example.com/x", "/x"},
		{"", Unmatched},
	} {
		if got := routeLabel(c.pattern); got != c.want {
			t.Errorf("routeLabel(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"ops", 64, "ops"},
		{"abcdef", 3, "abc"},
		{"告警通道", 4, "告"}, // never half a character
		{"告警通道", 6, "告警"},
	} {
		if got := truncate(c.s, c.n); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
