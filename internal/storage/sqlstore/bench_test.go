package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// benchStore opens a store on a fresh SQLite file or PostgreSQL schema with one
// user, one client and one session.
func benchStore(b *testing.B, flavor string) (*Store, storage.Session) {
	b.Helper()
	dsn := "sqlite://" + filepath.Join(b.TempDir(), "bench.db")
	if flavor == "postgres" {
		dsn = storagetest.PostgresDSN(b)
	}
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := time.Now().UTC()
	u := storage.User{ID: "u1", Username: "alice", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	c := storage.Client{ID: "spa", Name: "SPA", TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code", "refresh_token"},
		RedirectURIs: []string{"https://spa.example/cb"}, Scopes: []string{"openid", "profile", "offline_access"}, CreatedAt: now, UpdatedAt: now}
	sess := storage.Session{IDHash: digest("session", 0), SID: "sid-1", UserID: u.ID, AuthTime: now, AMR: []string{"pwd"},
		CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	if err := s.UpsertClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	return s, sess
}

func digest(kind string, i int) []byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	sum := sha256.Sum256(append([]byte(kind), n[:]...))
	return sum[:]
}

// BenchmarkStorage measures the storage side of the token path on each
// backend: one refresh-token rotation (UseRefreshToken: the read of token,
// grant, session and user, the decision, the write), the same from many
// goroutines at once (where SQLite's group commit batches them), a durable
// write (an access token's revocation, synced to disk before it returns),
// alone and in parallel, the session
// lookups of the authorization endpoint (with the user) and of the session
// manager (by sid), introspection's one read (AccessState), and the client
// read that the token endpoint's cache saves.
func BenchmarkStorage(b *testing.B) {
	// The framework runs each benchmark function several times (b.N rounds,
	// -count) on the same store: every grant needs an id of its own.
	var rounds atomic.Int64
	unique := func(b *testing.B) string { return fmt.Sprintf("%s-%d", b.Name(), rounds.Add(1)) }
	for _, flavor := range []string{"sqlite", "postgres"} {
		b.Run(flavor, func(b *testing.B) {
			if flavor == "postgres" {
				storagetest.RequirePostgres(b)
			}
			s, sess := benchStore(b, flavor)
			ctx := context.Background()

			b.Run("refresh_rotation", func(b *testing.B) {
				f, err := newFamily(ctx, s, sess, unique(b))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := f.rotate(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("refresh_rotation_parallel", func(b *testing.B) {
				round := unique(b)
				var families atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(8) // 8 × GOMAXPROCS concurrent families, as concurrent clients
				b.RunParallel(func(pb *testing.PB) {
					f, err := newFamily(ctx, s, sess, fmt.Sprintf("%s-%d", round, families.Add(1)))
					if err != nil {
						b.Error(err)
						return
					}
					for pb.Next() {
						if err := f.rotate(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})

			// A durable write: synced to disk before it returns (commit.go,
			// Durability), where a rotation is not.
			b.Run("revoke_access_token", func(b *testing.B) {
				round := unique(b)
				now := time.Now().UTC()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					if err := s.Remember(ctx, fmt.Sprintf("revoked-at:%s-%d", round, i), now.Add(time.Hour), now); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("revoke_access_token_parallel", func(b *testing.B) {
				round := unique(b)
				now := time.Now().UTC()
				var n atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := s.Remember(ctx, fmt.Sprintf("revoked-at:%s-%d", round, n.Add(1)), now.Add(time.Hour), now); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})

			b.Run("session_and_user", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := s.GetSessionAndUser(ctx, sess.IDHash); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("access_state", func(b *testing.B) {
				now := time.Now().UTC()
				g := storage.Grant{ID: "g-" + unique(b), ClientID: "spa", UserID: sess.UserID, SID: sess.SID, SessionBound: true,
					Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := s.CreateGrant(ctx, g, nil); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					st, err := s.AccessState(ctx, "revoked-access:jti", g.ID, now)
					if err != nil || st.Grant == nil || st.Session == nil {
						b.Fatalf("AccessState: %+v, %v", st, err)
					}
				}
			})

			b.Run("session_by_sid", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.GetSessionBySID(ctx, sess.SID); err != nil {
						b.Fatal(err)
					}
				}
			})

			b.Run("get_client", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.GetClient(ctx, "spa"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// family is one refresh-token family being rotated by a benchmark.
type family struct {
	s    *Store
	name string
	cur  []byte
	n    int
	now  time.Time
}

// newFamily stores a session-bound grant of sess with its first refresh token.
func newFamily(ctx context.Context, s *Store, sess storage.Session, name string) (*family, error) {
	now := time.Now().UTC()
	g := storage.Grant{ID: "g-" + name, ClientID: "spa", UserID: sess.UserID, SID: sess.SID, SessionBound: true,
		Scopes: []string{"openid", "offline_access"}, AuthTime: now, AMR: []string{"pwd"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	f := &family{s: s, name: name, cur: digest(name, 0), now: now}
	return f, s.CreateGrant(ctx, g, &storage.RefreshToken{Hash: f.cur, GrantID: g.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
}

// rotate uses the family's current token and makes its child the current one.
func (f *family) rotate(ctx context.Context) error {
	f.n++
	next := digest(f.name, f.n)
	_, _, _, err := f.s.UseRefreshToken(ctx, f.cur, func(rt storage.RefreshToken, g storage.Grant, _ *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &storage.RefreshToken{
			Hash: next, GrantID: g.ID, Generation: rt.Generation + 1, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}}
	})
	if err == nil {
		f.cur = next
	}
	return err
}
