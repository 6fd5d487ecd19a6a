package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

const memberRole = "member"

func newUser(role string) store.User {
	id := newID()
	return store.User{
		ID:           id,
		EmailBidx:    []byte("bidx:" + id),
		Email:        []byte("sealed-email:" + id),
		Name:         []byte("sealed-name:" + id),
		Role:         role,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$" + id,
		KeyVersion:   1,
		CreatedAt:    at(0),
		UpdatedAt:    at(time.Minute),
	}
}

// seedUsers stores the member role and n users with it.
func seedUsers(t *testing.T, db *store.DB, n int) []store.User {
	t.Helper()
	users := make([]store.User, n)
	for i := range users {
		users[i] = newUser(memberRole)
	}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: memberRole, Permissions: "customers.read"}); err != nil {
			return err
		}
		for _, u := range users {
			if err := tx.InsertUser(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	return users
}

func testRoles(t *testing.T, db *store.DB) {
	if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Role, error) { return tx.Roles(ctx) }); len(got) != 0 {
		t.Fatalf("Roles on an empty database = %+v, want none", got)
	}
	admin := store.Role{Name: "admin", SeeAll: true, Permissions: "customers.read customers.write users.manage", Fields: "{}"}
	sales := store.Role{Name: "sales", SeeAll: false, Permissions: "customers.read", Fields: "{}"}
	auditor := store.Role{Name: "auditor", SeeAll: true, Permissions: "", Fields: "{}"}
	for _, r := range []store.Role{sales, admin, auditor} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.EnsureRole(ctx, r) })
	}
	// EnsureRole again, with other settings: no error, nothing overwritten.
	for _, r := range []store.Role{
		{Name: "admin", SeeAll: false, Permissions: ""},
		{Name: "sales", SeeAll: true, Permissions: "users.manage"},
		sales,
	} {
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.EnsureRole(ctx, r) }); err != nil {
			t.Fatalf("EnsureRole(%q) on an existing role: %v", r.Name, err)
		}
	}
	for _, want := range []store.Role{admin, sales, auditor} {
		got, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, want.Name) })
		if err != nil {
			t.Fatalf("GetRole(%q): %v", want.Name, err)
		}
		if got != want {
			t.Errorf("GetRole(%q) = %+v, want %+v (EnsureRole must not overwrite)", want.Name, got, want)
		}
	}
	got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Role, error) { return tx.Roles(ctx) })
	if want := []store.Role{admin, auditor, sales}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Roles = %+v, want %+v (by name)", got, want)
	}
	// An unedited template role is upgraded by a newer template, an edited
	// one is not.
	tmpl := store.Role{Name: "tmpl", Permissions: "read", Fields: "{}", TemplateVersion: 1}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.EnsureRole(ctx, tmpl) })
	v2 := tmpl
	v2.Permissions, v2.Parent, v2.TemplateVersion = "read export", "admin", 2
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.EnsureRole(ctx, v2) })
	if got, _ := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "tmpl") }); got != v2 {
		t.Errorf("template role after a newer template = %+v, want %+v", got, v2)
	}
	edited := v2
	edited.Permissions, edited.TemplateVersion, edited.RevealQuota = "read", 0, 7
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateRole(ctx, edited) })
	v3 := v2
	v3.TemplateVersion = 3
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.EnsureRole(ctx, v3) })
	if got, _ := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "tmpl") }); got != edited {
		t.Errorf("edited role after a newer template = %+v, want %+v (edits must survive)", got, edited)
	}
	for _, name := range []string{"nobody", "", "ADMIN"} {
		_, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, name) })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRole(%q): err = %v, want ErrNotFound", name, err)
		}
	}
}

func testUsers(t *testing.T, db *store.DB) {
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "admin", SeeAll: true}); err != nil {
			return err
		}
		return tx.EnsureRole(ctx, store.Role{Name: memberRole})
	})
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountUsers(ctx) }); n != 0 {
		t.Fatalf("CountUsers on an empty database = %d, want 0", n)
	}
	u1, u2, u3 := newUser(memberRole), newUser("admin"), newUser(memberRole)
	u2.Disabled = true
	u3.KeyVersion = 4
	u3.EmailBidx = []byte{0x00, 0x01, 0xfe, 0xff} // binary blind index
	// Insert newest id first: Users must order by id, not insertion.
	for _, u := range []store.User{u3, u1, u2} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertUser(ctx, u) })
	}
	for _, want := range []store.User{u1, u2, u3} {
		got, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, want.ID) })
		if err != nil {
			t.Fatalf("GetUser(%s): %v", want.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetUser =\n%+v\nwant\n%+v", got, want)
		}
		got, err = read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) {
			return tx.GetUserByEmailBidx(ctx, want.EmailBidx)
		})
		if err != nil {
			t.Fatalf("GetUserByEmailBidx(%x): %v", want.EmailBidx, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetUserByEmailBidx =\n%+v\nwant\n%+v", got, want)
		}
	}
	got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.User, error) { return tx.Users(ctx) })
	if want := []store.User{u1, u2, u3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Users =\n%+v\nwant (ordered by id)\n%+v", got, want)
	}
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountUsers(ctx) }); n != 3 {
		t.Fatalf("CountUsers = %d, want 3", n)
	}

	// Lookups that find nothing.
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, newID()) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(unknown): err = %v, want ErrNotFound", err)
	}
	for _, bidx := range [][]byte{[]byte("bidx:nobody"), u3.EmailBidx[:3], {}} {
		if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUserByEmailBidx(ctx, bidx) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUserByEmailBidx(%x): err = %v, want ErrNotFound", bidx, err)
		}
	}

	// Duplicates are conflicts.
	dupEmail := newUser(memberRole)
	dupEmail.EmailBidx = u1.EmailBidx
	dupID := newUser(memberRole)
	dupID.ID = u2.ID
	for name, u := range map[string]store.User{"email_bidx": dupEmail, "id": dupID} {
		err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertUser(ctx, u) })
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("InsertUser with a duplicate %s: err = %v, want ErrConflict", name, err)
		}
	}
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountUsers(ctx) }); n != 3 {
		t.Fatalf("CountUsers after refused duplicates = %d, want 3", n)
	}

	// UpdateUser stores role, disabled, password hash and sealed fields.
	upd := u1
	upd.EmailBidx = []byte("bidx:new")
	upd.Email = []byte("sealed-email:new")
	upd.Name = []byte("sealed-name:new")
	upd.Role = "admin"
	upd.PasswordHash = "$argon2id$new"
	upd.Disabled = true
	upd.UpdatedAt = at(time.Hour)
	upd.CreatedAt = at(24 * time.Hour) // not updatable
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, upd) })
	want := upd
	want.CreatedAt = u1.CreatedAt
	gotU := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, u1.ID) })
	if !reflect.DeepEqual(gotU, want) {
		t.Fatalf("GetUser after UpdateUser =\n%+v\nwant\n%+v", gotU, want)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) {
		return tx.GetUserByEmailBidx(ctx, u1.EmailBidx)
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUserByEmailBidx(old blind index) after UpdateUser: err = %v, want ErrNotFound", err)
	}
	if got, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) {
		return tx.GetUserByEmailBidx(ctx, upd.EmailBidx)
	}); err != nil || got.ID != u1.ID {
		t.Errorf("GetUserByEmailBidx(new blind index) = %s, %v; want %s", got.ID, err, u1.ID)
	}
	// Re-enabling works too (disabled is not sticky).
	upd.Disabled = false
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, upd) })
	if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, u1.ID) }); got.Disabled {
		t.Errorf("user still disabled after UpdateUser with Disabled=false")
	}
	// Other users are untouched.
	for _, other := range []store.User{u2, u3} {
		if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, other.ID) }); !reflect.DeepEqual(got, other) {
			t.Errorf("UpdateUser changed another user:\n%+v\nwant\n%+v", got, other)
		}
	}

	// UpdateUser failures.
	ghost := newUser(memberRole)
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, ghost) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser(unknown id): err = %v, want ErrNotFound", err)
	}
	steal := u2
	steal.EmailBidx = u3.EmailBidx
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, steal) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateUser to another user's email_bidx: err = %v, want ErrConflict", err)
	}
	badRole := u2
	badRole.Role = "no-such-role"
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, badRole) }); err == nil {
		t.Errorf("UpdateUser to an unknown role succeeded, want a foreign key error")
	}
	if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, u2.ID) }); !reflect.DeepEqual(got, u2) {
		t.Errorf("refused UpdateUser changed the user:\n%+v\nwant\n%+v", got, u2)
	}
}

func testUserForeignKeys(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 1)
	u := newUser("no-such-role")
	err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertUser(ctx, u) })
	if err == nil {
		t.Fatal("InsertUser with an unknown role succeeded, want a foreign key error")
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("InsertUser with an unknown role: err = %v, must not be ErrNotFound", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, u.ID) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user with an unknown role was stored (GetUser err = %v)", err)
	}
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountUsers(ctx) }); n != 1 {
		t.Errorf("CountUsers = %d, want 1", n)
	}
	// Sessions, tokens and customers must reference existing users.
	cases := []struct {
		name string
		fn   func(ctx context.Context, tx *store.Tx) error
	}{
		{"session", func(ctx context.Context, tx *store.Tx) error {
			return tx.InsertSession(ctx, store.Session{IDHash: []byte("s"), UserID: newID(), CSRFHash: []byte("c"), CreatedAt: base, LastSeenAt: base, ExpiresAt: base})
		}},
		{"token", func(ctx context.Context, tx *store.Tx) error {
			return tx.InsertToken(ctx, store.APIToken{ID: newID(), UserID: newID(), Name: "x", Hash: []byte("h"), CreatedAt: base})
		}},
		{"customer owner", func(ctx context.Context, tx *store.Tx) error {
			return tx.InsertCustomer(ctx, newCustomer(newID()))
		}},
	}
	for _, tc := range cases {
		if err := write(t, db, tc.fn); err == nil {
			t.Errorf("%s referencing an unknown user was stored, want a foreign key error", tc.name)
		}
	}
	// A valid reference works (the failures above are about the reference).
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertToken(ctx, store.APIToken{ID: newID(), UserID: users[0].ID, Name: "x", Hash: []byte("h"), CreatedAt: base})
	})
}

func newSession(userID string, d time.Duration) store.Session {
	id := newID()
	return store.Session{
		IDHash:     []byte("session:" + id),
		UserID:     userID,
		CSRFHash:   []byte("csrf:" + id),
		IP:         "192.0.2.7",
		CreatedAt:  at(d),
		LastSeenAt: at(d + time.Second),
		ExpiresAt:  at(d + 12*time.Hour),
	}
}

func testSessions(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	s1, s2, s3 := newSession(users[0].ID, 0), newSession(users[0].ID, time.Minute), newSession(users[1].ID, 2*time.Minute)
	s2.IP = "" // allowed: NOT NULL DEFAULT ''
	for _, s := range []store.Session{s1, s2, s3} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertSession(ctx, s) })
	}
	get := func(h []byte) (store.Session, error) {
		t.Helper()
		return read(t, db, func(ctx context.Context, tx *store.Tx) (store.Session, error) { return tx.GetSession(ctx, h) })
	}
	for _, want := range []store.Session{s1, s2, s3} {
		got, err := get(want.IDHash)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetSession =\n%+v\nwant\n%+v", got, want)
		}
	}
	if _, err := get([]byte("session:none")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession(unknown): err = %v, want ErrNotFound", err)
	}
	dup := newSession(users[1].ID, 0)
	dup.IDHash = s1.IDHash
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertSession(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("InsertSession with an existing id hash: err = %v, want ErrConflict", err)
	}

	// Touch changes last_seen_at of that session only.
	seen := at(time.Hour)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.TouchSession(ctx, s1.IDHash, seen) })
	want := s1
	want.LastSeenAt = seen
	if got, err := get(s1.IDHash); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetSession after TouchSession = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := get(s2.IDHash); !reflect.DeepEqual(got, s2) {
		t.Fatalf("TouchSession changed another session: %+v, want %+v", got, s2)
	}

	// Delete one session.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteSession(ctx, s1.IDHash) })
	if _, err := get(s1.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession after DeleteSession: err = %v, want ErrNotFound", err)
	}
	if _, err := get(s2.IDHash); err != nil {
		t.Fatalf("DeleteSession removed another session of the same user: %v", err)
	}
	// Deleting again (or something unknown) is not an error.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteSession(ctx, s1.IDHash) })

	// DeleteUserSessions only deletes that user's sessions.
	s4 := newSession(users[0].ID, 3*time.Minute)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertSession(ctx, s4) })
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUserSessions(ctx, users[0].ID) })
	for _, s := range []store.Session{s2, s4} {
		if _, err := get(s.IDHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session of the user survived DeleteUserSessions: err = %v", err)
		}
	}
	if got, err := get(s3.IDHash); err != nil || !reflect.DeepEqual(got, s3) {
		t.Errorf("DeleteUserSessions touched another user's session: %+v, %v", got, err)
	}
}

func newToken(userID string, d time.Duration) store.APIToken {
	id := newID()
	return store.APIToken{ID: id, UserID: userID, Name: "token " + id, Hash: []byte("hash:" + id), CreatedAt: at(d)}
}

func testAPITokens(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	u1, u2 := users[0].ID, users[1].ID
	t1 := newToken(u1, 0)
	t2 := newToken(u1, time.Hour)
	t2.ExpiresAt = ptr(at(30 * 24 * time.Hour))
	t3 := newToken(u1, 2*time.Hour)
	t3.RevokedAt = ptr(at(3 * time.Hour)) // stored already revoked
	t3.LastUsedAt = ptr(at(150 * time.Minute))
	t4 := newToken(u2, 30*time.Minute)
	for _, tok := range []store.APIToken{t2, t4, t1, t3} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertToken(ctx, tok) })
	}
	getByID := func(id string) (store.APIToken, error) {
		t.Helper()
		return read(t, db, func(ctx context.Context, tx *store.Tx) (store.APIToken, error) { return tx.GetToken(ctx, id) })
	}
	for _, want := range []store.APIToken{t1, t2, t3, t4} {
		got, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.APIToken, error) {
			return tx.GetTokenByHash(ctx, want.Hash)
		})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetTokenByHash = %+v, %v\nwant %+v", got, err, want)
		}
		got, err = getByID(want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetToken = %+v, %v\nwant %+v", got, err, want)
		}
	}
	listIDs := func(user string) []string {
		t.Helper()
		toks := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.APIToken, error) { return tx.UserTokens(ctx, user) })
		var ids []string
		for _, tok := range toks {
			if tok.UserID != user {
				t.Errorf("UserTokens(%s) returned a token of %s", user, tok.UserID)
			}
			ids = append(ids, tok.ID)
		}
		return ids
	}
	if got, want := listIDs(u1), []string{t3.ID, t2.ID, t1.ID}; !slices.Equal(got, want) {
		t.Fatalf("UserTokens = %v, want newest first %v", got, want)
	}
	if got := listIDs(newID()); len(got) != 0 {
		t.Fatalf("UserTokens(unknown user) = %v, want none", got)
	}

	// Unknown tokens.
	if _, err := getByID(newID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetToken(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.APIToken, error) {
		return tx.GetTokenByHash(ctx, []byte("hash:none"))
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTokenByHash(unknown): err = %v, want ErrNotFound", err)
	}
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RevokeToken(ctx, newID(), at(0)) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeToken(unknown): err = %v, want ErrNotFound", err)
	}
	dup := newToken(u2, 0)
	dup.Hash = t1.Hash
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertToken(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("InsertToken with an existing hash: err = %v, want ErrConflict", err)
	}

	// RevokeToken is idempotent and keeps the first revoked_at.
	first, second := at(5*time.Hour), at(6*time.Hour)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RevokeToken(ctx, t1.ID, first) })
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RevokeToken(ctx, t1.ID, second) }); err != nil {
		t.Fatalf("RevokeToken on a revoked token: %v, want nil (idempotent)", err)
	}
	if got, _ := getByID(t1.ID); got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
		t.Fatalf("revoked_at after two RevokeToken = %v, want the first %v", got.RevokedAt, first)
	}
	if got, _ := getByID(t2.ID); got.RevokedAt != nil {
		t.Fatalf("RevokeToken revoked another token")
	}

	// RevokeUserTokens revokes the user's live tokens, keeps earlier
	// revocation times and leaves other users alone.
	all := at(7 * time.Hour)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.RevokeUserTokens(ctx, u1, all) })
	for _, tc := range []struct {
		id   string
		want *time.Time
	}{{t1.ID, &first}, {t2.ID, &all}, {t3.ID, t3.RevokedAt}, {t4.ID, nil}} {
		got, err := getByID(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.RevokedAt, tc.want) {
			t.Errorf("token %s: revoked_at after RevokeUserTokens = %v, want %v", tc.id, got.RevokedAt, tc.want)
		}
	}

	// TouchToken records the last use of that token only.
	used := at(8 * time.Hour)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.TouchToken(ctx, t4.ID, used) })
	want := t4
	want.LastUsedAt = &used
	if got, err := getByID(t4.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetToken after TouchToken = %+v, %v\nwant %+v", got, err, want)
	}
	if got, _ := getByID(t2.ID); got.LastUsedAt != nil {
		t.Errorf("TouchToken changed another token's last_used_at: %v", got.LastUsedAt)
	}
}
