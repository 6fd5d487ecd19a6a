package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAlertSinksAPI: the sink routes answer with the right status, never
// echo a secret, and refuse those without the permission.
func TestAlertSinksAPI(t *testing.T) {
	h := newHarness(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer recv.Close()
	const secret = "sink-secret-0f4e2a9d7c"
	const token = "url-token-5b8e1c"
	create := `{"name":"ops","kind":"webhook","min_severity":"high","url":"` + recv.URL + `/hook?token=` + token + `","secret":"` + secret + `"}`
	secrets := []string{secret, token, "/hook"}
	h.run([]scenario{
		{name: "a sales rep may not list", req: req{method: "GET", path: "/api/v1/alert-sinks", as: "s1"}, status: 403, problem: true},
		{name: "a sales rep may not add", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "s1", body: create}, status: 403, problem: true, notWant: secrets},
		{name: "anonymous", req: req{method: "GET", path: "/api/v1/alert-sinks"}, status: 401, problem: true},
		{name: "not JSON", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin", body: create, ctype: "text/plain"}, status: 415, problem: true},
		{name: "unknown field", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin", body: `{"name":"x","kind":"webhook","colour":"red"}`}, status: 400, problem: true},
		{name: "malformed", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin", body: `{"name":`}, status: 400, problem: true},
		{name: "invalid fields", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin",
			body: `{"name":"Bad Name","kind":"pager","min_severity":"urgent","secret":"` + secret + `"}`},
			status: 422, problem: true, want: []string{`"field":"name"`, `"field":"kind"`, `"field":"min_severity"`}, notWant: secrets},
		{name: "plain http to a remote host", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin",
			body: `{"name":"ops","kind":"webhook","url":"http://hooks.example.com/hook?token=` + token + `","secret":"` + secret + `"}`},
			status: 422, problem: true, want: []string{`"field":"url"`, "https"}, notWant: secrets},
		{name: "smtp without tls to a remote host", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin",
			body: `{"name":"mail","kind":"smtp","host":"smtp.example.com","tls":"none","from":"custos@example.com","to":["sec@example.com"]}`},
			status: 422, problem: true, want: []string{`"field":"tls"`}},
		{name: "create", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin", body: create},
			status: 201, want: []string{`"name":"ops"`, `"kind":"webhook"`, `"target":"` + recv.URL + `"`, `"enabled":true`, `"consecutive_failures":0`}, notWant: secrets},
		{name: "duplicate", req: req{method: "POST", path: "/api/v1/alert-sinks", as: "admin", body: create}, status: 422, problem: true, want: []string{"exists"}, notWant: secrets},
		{name: "list", req: req{method: "GET", path: "/api/v1/alert-sinks", as: "admin"}, status: 200,
			want: []string{`"items":[{"name":"ops"`, `"min_severity":"high"`, `"pending":0`}, notWant: append(secrets, `"url"`, `"secret"`)},
		{name: "test", req: req{method: "POST", path: "/api/v1/alert-sinks/ops/test", as: "admin"}, status: 200, want: []string{`"ok":true`, `"sink":"ops"`}, notWant: secrets},
		{name: "a sales rep may not test", req: req{method: "POST", path: "/api/v1/alert-sinks/ops/test", as: "s1"}, status: 403, problem: true},
		{name: "change severity, keep secrets", req: req{method: "PUT", path: "/api/v1/alert-sinks/ops", as: "admin", body: `{"min_severity":"critical","enabled":false}`},
			status: 200, want: []string{`"min_severity":"critical"`, `"enabled":false`, `"last_ok_at":"`}, notWant: secrets},
		{name: "test after the change", req: req{method: "POST", path: "/api/v1/alert-sinks/ops/test", as: "admin"}, status: 200, want: []string{`"ok":true`}},
		{name: "kind cannot change", req: req{method: "PUT", path: "/api/v1/alert-sinks/ops", as: "admin", body: `{"kind":"slack"}`}, status: 422, problem: true},
		{name: "change a missing sink", req: req{method: "PUT", path: "/api/v1/alert-sinks/nope", as: "admin", body: `{"min_severity":"low"}`}, status: 404, problem: true},
		{name: "malformed name", req: req{method: "PUT", path: "/api/v1/alert-sinks/BAD%20NAME", as: "admin", body: `{"min_severity":"low"}`}, status: 404, problem: true},
		{name: "a sales rep may not delete", req: req{method: "DELETE", path: "/api/v1/alert-sinks/ops", as: "s1"}, status: 403, problem: true},
		{name: "delete", req: req{method: "DELETE", path: "/api/v1/alert-sinks/ops", as: "admin"}, status: 204},
		{name: "delete again", req: req{method: "DELETE", path: "/api/v1/alert-sinks/ops", as: "admin"}, status: 404, problem: true},
		{name: "test a deleted sink", req: req{method: "POST", path: "/api/v1/alert-sinks/ops/test", as: "admin"}, status: 404, problem: true},
		{name: "empty list", req: req{method: "GET", path: "/api/v1/alert-sinks", as: "admin"}, status: 200, want: []string{`"items":[]`}},
	})
	for _, sec := range secrets {
		if strings.Contains(h.log.String(), sec) {
			t.Fatalf("the server log holds %q:\n%s", sec, h.log.String())
		}
	}
}
