// Package node opens (or initializes) a Custos data directory: the database,
// the root key, the keyring, and the services built on them.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/oidc"
	"github.com/custos/custos/internal/passkey"
	"github.com/custos/custos/internal/store"
)

// Node is an opened data directory with its services.
type Node struct {
	Config   config.Config
	DB       *store.DB
	Keys     *keys.Keyring
	Auth     *auth.Service
	CRM      *crm.Service
	Passkeys *passkey.Service
	SSO      *auth.SSO // nil when single sign-on is not configured
	// Audit signs checkpoints of the audit chain into the data directory.
	Audit *audit.Checkpointer
	// Monitor runs the stream detectors over the audit trail (serve runs
	// it every few seconds; `custos alerts scan` once).
	Monitor *monitor.Engine
	// Notifier sends alerts to their sinks (serve runs it).
	Notifier *monitor.Notifier
	Log      *slog.Logger
	// Created is true when this Open initialized the data directory.
	Created bool
	now     func() time.Time
}

// Options for Open.
type Options struct {
	// Create initializes a new data directory (or an empty database) when
	// there is none; without it, an uninitialized one is an error.
	Create bool
	Logger *slog.Logger
	Now    func() time.Time
	CRM    crm.Options   // optional overrides (tests and benchmarks)
	Auth   auth.Settings // optional overrides of login throttling (tests)
	// Actor is who opens the node, for the audit event of a first
	// initialization ("cli:<os user>"; default "system").
	Actor string
	// HTTPClient reaches the OIDC identity provider (nil: a default client).
	HTTPClient *http.Client
	// Notify tunes the alert notifier (tests; zero values are defaults).
	Notify monitor.NotifierOptions
}

// Open opens the data directory of cfg. It never creates a root key over a
// database that already has keys: a missing or wrong key is a clear error.
func Open(ctx context.Context, cfg config.Config, o Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		if !o.Create {
			return nil, fmt.Errorf("data directory %s does not exist: run `custos init --data %s` first", cfg.DataDir, cfg.DataDir)
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	db, err := store.Open(ctx, cfg.DatabaseDSN())
	if err != nil {
		return nil, err
	}
	n, err := open(ctx, cfg, db, o)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return n, nil
}

func open(ctx context.Context, cfg config.Config, db *store.DB, o Options) (*Node, error) {
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	var initialized bool
	if err := db.Read(ctx, func(tx *store.Tx) error {
		n, err := tx.CountKeyring(ctx)
		initialized = n > 0
		return err
	}); err != nil {
		return nil, err
	}
	kopts := keys.Options{CacheSize: cfg.KeyCacheSize, Now: o.Now}
	var kr *keys.Keyring
	created := false
	root, err := keys.OpenLocalFile(cfg.RootKeyPath())
	switch {
	case errors.Is(err, keys.ErrNoRootKey) && initialized:
		return nil, fmt.Errorf("the database at %s is initialized but its root key %s is missing: restore the key file from your key backup (Custos never creates a new key over existing data)", db.Location, cfg.RootKeyPath())
	case errors.Is(err, keys.ErrNoRootKey) && !o.Create:
		return nil, fmt.Errorf("data directory %s is not initialized: run `custos init --data %s`", cfg.DataDir, cfg.DataDir)
	case errors.Is(err, keys.ErrNoRootKey):
		if root, err = keys.CreateLocalFile(cfg.RootKeyPath()); err != nil {
			return nil, err
		}
		if kr, err = keys.Initialize(ctx, db, root, kopts); err != nil {
			return nil, err
		}
		created = true
	case err != nil:
		return nil, err
	case initialized:
		if kr, err = keys.Open(ctx, db, root, kopts); err != nil {
			if errors.Is(err, keys.ErrWrongRootKey) {
				return nil, fmt.Errorf("the root key %s does not belong to the database at %s: %w", cfg.RootKeyPath(), db.Location, err)
			}
			return nil, err
		}
	case !o.Create:
		return nil, fmt.Errorf("the database at %s is not initialized: run `custos init`", db.Location)
	default:
		if kr, err = keys.Initialize(ctx, db, root, kopts); err != nil {
			return nil, err
		}
		created = true
	}
	o.CRM.Now, o.CRM.Logger = o.Now, o.Logger
	service := crm.New(db, kr, o.CRM)
	if err := service.SeedRoles(ctx, access.Templates, access.MFARoles); err != nil {
		return nil, fmt.Errorf("seed roles: %w", err)
	}
	origin := cfg.Origin()
	u, err := url.Parse(origin)
	if err != nil {
		return nil, fmt.Errorf("public URL %q: %w", origin, err)
	}
	// Passkeys need a host name browsers accept as a WebAuthn RP ID; without
	// one (say, serving on a bare IP), the rest of Custos still runs.
	pk, err := passkey.New(db, u.Hostname(), origin, "Custos", o.Now)
	if err != nil {
		o.Logger.Warn("passkeys disabled: set --public-url to the https URL users open", "reason", err.Error())
		pk = nil
	}
	as := auth.New(db, kr, authSettings(cfg, o.Auth), o.Now)
	var sso *auth.SSO
	if cfg.OIDCIssuer != "" {
		roles, err := cfg.OIDCRoles()
		if err != nil {
			return nil, err
		}
		sso, err = as.NewSSO(oidc.Config{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
			RedirectURL: origin + "/api/v1/auth/oidc/callback", RoleClaim: cfg.OIDCRoleClaim, RoleMap: roles}, o.HTTPClient)
		if err != nil {
			return nil, fmt.Errorf("single sign-on: %w", err)
		}
	}
	if created {
		// The keys came into being: on record, naming the root key by its
		// id (never the key).
		actor := o.Actor
		if actor == "" {
			actor = "system"
		}
		if err := audit.RecordAlone(ctx, db, o.Now(), audit.Event{Actor: actor, Action: "keys.init", ObjectType: "keyring",
			ObjectID: kr.RootID(), Outcome: audit.OK, Details: map[string]any{"root": "local_file"}}); err != nil {
			return nil, err
		}
	}
	signer, _, err := audit.LoadOrCreateKey(cfg.AuditKeyPath())
	if err != nil {
		return nil, err
	}
	others, err := audit.LoadTrustedDir(cfg.AuditTrustedDir())
	if err != nil {
		return nil, err
	}
	cp := &audit.Checkpointer{DB: db, Signer: signer, Log: audit.CheckpointLog{Path: cfg.AuditCheckpointPath()}, Now: o.Now, Trust: others}
	if err := cp.Refresh(ctx); err != nil {
		return nil, err
	}
	// The stream detectors read thresholds with the same environment
	// overrides as the guarded path.
	detectors := &monitor.Engine{DB: db, Now: o.Now, Env: o.CRM.Env, Log: o.Logger}
	return &Node{Passkeys: pk, SSO: sso, Audit: cp, Monitor: detectors, now: o.Now,
		Config: cfg, DB: db, Keys: kr, Log: o.Logger, Created: created,
		Auth: as,
		CRM:  service,

		Notifier: monitor.NewNotifier(db, kr, notifierOptions(o)),
	}, nil
}

// notifierOptions gives the alert notifier the node's clock, log and cipher.
func notifierOptions(o Options) monitor.NotifierOptions {
	no := o.Notify
	if no.Now == nil {
		no.Now = o.Now
	}
	if no.Logger == nil {
		no.Logger = o.Logger
	}
	if no.Cipher == nil {
		no.Cipher = o.CRM.Cipher
	}
	return no
}

// Close writes a final audit checkpoint (so that cutting the tail of a
// stopped node's trail is detected) and releases the database.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, cerr := n.Audit.Checkpoint(ctx)
	if cerr != nil {
		// Tampering is reported by verification and the serve-time
		// jobs; closing still releases the database.
		n.Log.Error("final audit checkpoint not written", "err", cerr)
	}
	return n.DB.Close()
}

// FirstAdmin is the administrator created on first start.
type FirstAdmin struct {
	Email     string
	Password  string // set only when generated (to be shown once)
	Generated bool
}

// EnsureFirstAdmin creates the first administrator when there are no users:
// from email/password when given, otherwise with a generated password.
// It returns nil when users already exist.
func (n *Node) EnsureFirstAdmin(ctx context.Context, actor, email, password string) (*FirstAdmin, error) {
	count, err := n.Auth.CountUsers(ctx)
	if err != nil {
		return nil, err
	}
	if count > 0 {
		return nil, nil
	}
	fa := &FirstAdmin{Email: email}
	if fa.Email == "" {
		fa.Email = "admin@custos.local"
	}
	if password == "" {
		if password, err = auth.GeneratePassword(); err != nil {
			return nil, err
		}
		fa.Password, fa.Generated = password, true
	}
	ev := audit.Event{Actor: actor}
	if _, err := n.Auth.CreateUser(ctx, ev, auth.NewUser{Email: fa.Email, Name: "Administrator", Role: "admin", Password: password}); err != nil {
		return nil, fmt.Errorf("create first administrator: %w", err)
	}
	return fa, nil
}

// Roles returns the roles by name.
func (n *Node) Roles(ctx context.Context) (map[string]store.Role, error) {
	out := map[string]store.Role{}
	err := n.DB.Read(ctx, func(tx *store.Tx) error {
		rs, err := tx.Roles(ctx)
		for _, r := range rs {
			out[r.Name] = r
		}
		return err
	})
	return out, err
}

func authSettings(cfg config.Config, s auth.Settings) auth.Settings {
	s.SessionIdle, s.SessionLifetime = cfg.SessionIdle, cfg.SessionLifetime
	return s
}
