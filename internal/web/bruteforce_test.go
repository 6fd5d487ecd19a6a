package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/web"
)

var requestIDField = regexp.MustCompile(`"request_id":"[0-9a-f]+"`)

// A scripted brute force of 50 wrong passwords over HTTP is locked within
// the threshold; the right password is then refused; a known and an unknown
// account get the same answers (status, body, Retry-After) in the same time.
func TestBruteForceOverHTTP(t *testing.T) {
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, Auth: auth.Settings{DelayBase: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.Auth.CreateUser(context.Background(), audit.Event{Actor: "test"}, auth.NewUser{Email: "known@example.com", Name: "K", Role: "sales", Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(n.DB, n.Auth, n.CRM, web.Options{}).Handler())
	defer srv.Close()

	type answer struct {
		status     int
		body       string
		retryAfter string
		took       time.Duration
	}
	login := func(email, pw string) answer {
		start := time.Now()
		resp, err := http.Post(srv.URL+"/api/v1/auth/login", "application/json", strings.NewReader(`{"email":"`+email+`","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, requestIDField.ReplaceAllString(string(b), ""), resp.Header.Get("Retry-After"), time.Since(start)}
	}
	var known, unknown []answer
	for i := 0; i < 50; i++ {
		known = append(known, login("known@example.com", "wrong password "+string(rune('a'+i%26))))
		unknown = append(unknown, login("unknown@example.com", "wrong password "+string(rune('a'+i%26))))
	}
	locked := -1
	for i, a := range known {
		if a.status == http.StatusTooManyRequests {
			locked = i
			break
		}
		if a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i+1, a.status)
		}
	}
	if locked != 5 {
		t.Fatalf("locked at attempt %d, want the 6th (threshold 5)", locked+1)
	}
	for i, a := range known[locked:] {
		if a.status != http.StatusTooManyRequests || a.retryAfter == "" {
			t.Fatalf("attempt %d after the lock: %d Retry-After=%q", locked+i+1, a.status, a.retryAfter)
		}
	}
	right := login("known@example.com", "correct horse battery")
	if right.status != http.StatusTooManyRequests {
		t.Fatalf("right password during the lock: %d %s", right.status, right.body)
	}
	t.Logf("known account: 401 x%d, then 429 x%d; right password during the lock: %d Retry-After %ss", locked, 50-locked, right.status, right.retryAfter)

	// Same answers for the known and the unknown account.
	var dk, du []time.Duration
	for i := range known {
		k, u := known[i], unknown[i]
		if k.status != u.status || k.body != u.body || (k.retryAfter == "") != (u.retryAfter == "") {
			t.Fatalf("attempt %d differs:\nknown   %d %s\nunknown %d %s", i+1, k.status, k.body, u.status, u.body)
		}
		dk, du = append(dk, k.took), append(du, u.took)
	}
	// Timing: the progressive delays (0, 20, 40, 80, 160 ms) and the password
	// work are the same; compare the medians of the 401s and of the 429s.
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	for _, part := range []struct {
		name string
		k, u []time.Duration
	}{{"401s", dk[:locked], du[:locked]}, {"429s", dk[locked:], du[locked:]}} {
		mk, mu := median(part.k), median(part.u)
		diff := mk - mu
		if diff < 0 {
			diff = -diff
		}
		t.Logf("%s: median known %v, unknown %v", part.name, mk, mu)
		if diff > 15*time.Millisecond && diff > max(mk, mu)/2 {
			t.Errorf("%s: timing reveals the account: known %v, unknown %v", part.name, mk, mu)
		}
	}
}
