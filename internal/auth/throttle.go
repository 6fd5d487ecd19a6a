package auth

import (
	"context"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// reserve counts an attempt against every key BEFORE the secret is checked,
// and refuses (*LockedError) when a key is locked or this attempt goes past a
// key's threshold. Counting first means parallel requests cannot all pass a
// check made before any of them had failed: each gets its own number from an
// atomic UPSERT, and only the first threshold of them are verified. A success
// gives the attempt back with release. It returns the account's count and
// the locks ("account", "ip") this attempt sets should it fail.
func (s *Service) reserve(ctx context.Context, keys []string, now time.Time) (int, []string, error) {
	var wait time.Duration
	acct := 0
	var locks []string
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		th, err := s.throttling(ctx, tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			t, err := tx.GetLoginThrottle(ctx, k)
			if err != nil {
				return err
			}
			if t.LockedUntil != nil && t.LockedUntil.After(now) {
				wait = max(wait, t.LockedUntil.Sub(now))
			}
		}
		if wait > 0 {
			return nil // locked: nothing to count
		}
		for i, k := range keys {
			t, err := tx.RecordLoginFailure(ctx, k, now, th.window, th.threshold(k), th.lockFor)
			if err != nil {
				return err
			}
			if i == 0 {
				acct = t.Failures
			}
			if t.Failures > th.threshold(k) && t.LockedUntil != nil {
				wait = max(wait, t.LockedUntil.Sub(now))
			}
			if t.Failures == th.threshold(k) {
				locks = append(locks, lockName(k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if wait > 0 {
		return acct, nil, &LockedError{RetryAfter: wait}
	}
	return acct, locks, nil
}

func lockName(key string) string {
	if strings.HasPrefix(key, "ip:") {
		return "ip"
	}
	return "account"
}

// release settles a successful proof of identity inside tx: the account's
// counter is cleared, the other keys (the source address) get the reserved
// attempt back.
func (s *Service) release(ctx context.Context, tx *store.Tx, keys []string) error {
	if err := tx.ClearLoginThrottle(ctx, keys[0]); err != nil {
		return err
	}
	th, err := s.throttling(ctx, tx)
	if err != nil {
		return err
	}
	for _, k := range keys[1:] {
		if err := tx.RefundLoginAttempt(ctx, k, th.threshold(k)); err != nil {
			return err
		}
	}
	return nil
}
