package store

import (
	"context"
	"time"
)

// OIDCPending is an OpenID Connect login waiting for its callback.
type OIDCPending struct {
	StateHash []byte
	Nonce     string
	Verifier  []byte // sealed
	Browser   []byte // hash of the browser-binding cookie
	CreatedAt time.Time
}

// InsertOIDCPending stores a pending login and drops those older than maxAge.
func (tx *Tx) InsertOIDCPending(ctx context.Context, p OIDCPending, maxAge time.Duration) error {
	if _, err := tx.exec(ctx, `DELETE FROM oidc_pending WHERE created_at < ?`, Micros(p.CreatedAt.Add(-maxAge))); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `INSERT INTO oidc_pending (state_hash, nonce, verifier, browser, created_at) VALUES (?, ?, ?, ?, ?)`,
		p.StateHash, p.Nonce, p.Verifier, p.Browser, Micros(p.CreatedAt))
	return err
}

// TakeOIDCPending loads and deletes a pending login (single use).
func (tx *Tx) TakeOIDCPending(ctx context.Context, stateHash []byte) (OIDCPending, error) {
	p := OIDCPending{StateHash: stateHash}
	var at int64
	if err := tx.queryRow(ctx, `SELECT nonce, verifier, browser, created_at FROM oidc_pending WHERE state_hash = ?`, stateHash).Scan(&p.Nonce, &p.Verifier, &p.Browser, &at); err != nil {
		return OIDCPending{}, mapErr(err)
	}
	p.CreatedAt = FromMicros(at)
	if _, err := tx.exec(ctx, `DELETE FROM oidc_pending WHERE state_hash = ?`, stateHash); err != nil {
		return OIDCPending{}, err
	}
	return p, nil
}
