package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

var (
	failBuildOnce sync.Once
	failBin       string
	failBuildErr  error
)

// buildFailpointBinary builds custos with -tags failpoint: CUSTOS_FAILPOINT
// then names a point where the process kills itself with SIGKILL.
func buildFailpointBinary(t *testing.T) string {
	t.Helper()
	failBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "custos-failpoint-")
		if err != nil {
			failBuildErr = err
			return
		}
		failBin = filepath.Join(dir, "custos")
		if out, err := exec.Command("go", "build", "-tags", "failpoint", "-o", failBin, ".").CombinedOutput(); err != nil {
			failBuildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if failBuildErr != nil {
		t.Fatal(failBuildErr)
	}
	return failBin
}

// Offboarding a rep with 1,000 customers is one transaction: a kill -9 in
// the middle of the handover (after half the customers moved, inside the
// transaction) leaves everything as it was; the rerun moves all of them.
func TestOffboardIsAtomicUnderKill9(t *testing.T) {
	bin := buildFailpointBinary(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			env := append(os.Environ(), "CUSTOS_ADMIN_EMAIL=root@example.com", "CUSTOS_ADMIN_PASSWORD=admin password 123")
			cfg := config.Default()
			cfg.DataDir = dir
			if engine == "postgres" {
				cfg.DB = pgtest.Shared(t).NewDatabase(t)
				env = append(env, "CUSTOS_DB="+cfg.DB)
			}
			run := func(extraEnv []string, stdin string, args ...string) (string, error) {
				c := exec.Command(bin, args...)
				c.Env, c.Stdin = append(env, extraEnv...), strings.NewReader(stdin)
				out, err := c.CombinedOutput()
				return strings.TrimSpace(string(out)), err
			}
			must := func(stdin string, args ...string) string {
				t.Helper()
				out, err := run(nil, stdin, args...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				return out
			}
			must("", "init", "--data", dir)
			must("a very good password\n", "user", "add", "--data", dir, "--email", "rep@example.com", "--role", "sales", "--name", "Rep")
			must("a very good password\n", "user", "add", "--data", dir, "--email", "next@example.com", "--role", "sales", "--name", "Next")
			must("", "token", "create", "--data", dir, "--user", "rep@example.com", "--name", "laptop")

			// 1,000 customers owned by the rep, through the guarded path.
			const total = 1000
			repID, nextID := seedOwned(t, cfg, "rep@example.com", "next@example.com", total)
			check := func(wantOwner string, wantDisabled bool, wantHandovers int) {
				t.Helper()
				owned := countOwners(t, cfg)
				if owned[wantOwner] != total || len(owned) != 1 {
					t.Fatalf("owners after the run: %v (want all %d with %s)", owned, total, wantOwner)
				}
				disabled, handovers := userState(t, cfg, repID)
				if disabled != wantDisabled || handovers != wantHandovers {
					t.Fatalf("rep disabled=%v, handover events %d; want %v, %d", disabled, handovers, wantDisabled, wantHandovers)
				}
			}
			check(repID, false, 0)

			// Killed in the middle of the transaction: nothing happened.
			out, err := run([]string{"CUSTOS_FAILPOINT=offboard.half"}, "", "user", "offboard", "--data", dir, "rep@example.com", "--to", "next@example.com")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("offboard with the failpoint was not killed: %v\n%s", err, out)
			}
			t.Logf("killed with SIGKILL after moving %d of %d customers inside the transaction", total/2+1, total)
			check(repID, false, 0)

			// The rerun hands over everything, at once.
			out = must("", "user", "offboard", "--data", dir, "rep@example.com", "--to", "next@example.com")
			t.Log(out)
			if !strings.Contains(out, fmt.Sprintf("%d customers to next@example.com", total)) || !strings.Contains(out, "1 tokens revoked") {
				t.Fatalf("report: %s", out)
			}
			check(nextID, true, total)
			// Usage errors are one line and change nothing.
			if out, err := run(nil, "", "user", "offboard", "--data", dir, "next@example.com"); err == nil || strings.Count(out, "\n") > 0 {
				t.Fatalf("offboard without a destination: %v %q", err, out)
			}
		})
	}
}

func openNode(t *testing.T, cfg config.Config) *node.Node {
	t.Helper()
	n, err := node.Open(context.Background(), cfg, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func seedOwned(t *testing.T, cfg config.Config, ownerEmail, otherEmail string, total int) (string, string) {
	t.Helper()
	n := openNode(t, cfg)
	defer n.Close()
	ctx := context.Background()
	owner, err := n.Auth.FindUserByEmail(ctx, ownerEmail)
	if err != nil {
		t.Fatal(err)
	}
	other, err := n.Auth.FindUserByEmail(ctx, otherEmail)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]crm.ImportRow, total)
	for i := range rows {
		name, phone := fmt.Sprintf("客户%04d有限公司", i), fmt.Sprintf("1391%07d", i)
		rows[i] = crm.ImportRow{Line: i + 2, Fields: crm.CustomerFields{Name: &name, Phones: &[]string{phone}, OwnerID: &owner.ID}}
	}
	res, err := n.CRM.ImportCustomers(ctx, access.Operator("test"), rows, nil, crm.ImportOptions{Atomic: true})
	if err != nil || res.Imported != total {
		t.Fatalf("seed: %+v %v", res, err)
	}
	return owner.ID, other.ID
}

func countOwners(t *testing.T, cfg config.Config) map[string]int {
	t.Helper()
	n := openNode(t, cfg)
	defer n.Close()
	owned := map[string]int{}
	ctx := context.Background()
	err := n.DB.Read(ctx, func(tx *store.Tx) error {
		rows, err := tx.ListCustomers(ctx, store.CustomerQuery{Scope: store.Scope{All: true, Hidden: store.HiddenInclude}})
		for _, r := range rows {
			owned[r.OwnerID]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return owned
}

func userState(t *testing.T, cfg config.Config, userID string) (bool, int) {
	t.Helper()
	n := openNode(t, cfg)
	defer n.Close()
	ctx := context.Background()
	u, err := n.Auth.GetUser(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	var handovers int
	err = n.DB.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(ctx, 0, 100000)
		for _, e := range evs {
			if e.Action == "customer.handover" {
				handovers++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u.Disabled, handovers
}
