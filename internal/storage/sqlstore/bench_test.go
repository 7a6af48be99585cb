package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"path/filepath"
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
// backend: one refresh-token rotation (the read-decide-write transaction of
// UseRefreshToken), the session lookup that follows it for a session-bound
// grant, and the client read that the token endpoint's cache saves.
func BenchmarkStorage(b *testing.B) {
	for _, flavor := range []string{"sqlite", "postgres"} {
		b.Run(flavor, func(b *testing.B) {
			if flavor == "postgres" {
				storagetest.RequirePostgres(b)
			}
			s, sess := benchStore(b, flavor)
			ctx := context.Background()

			b.Run("refresh_rotation", func(b *testing.B) {
				now := time.Now().UTC()
				g := storage.Grant{ID: "g-" + b.Name(), ClientID: "spa", UserID: sess.UserID, SID: sess.SID, SessionBound: true,
					Scopes: []string{"openid", "offline_access"}, AuthTime: now, AMR: []string{"pwd"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				first := digest(b.Name(), 0)
				if err := s.CreateGrant(ctx, g, &storage.RefreshToken{Hash: first, GrantID: g.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
				cur, i := first, 0
				b.ReportAllocs()
				for b.Loop() {
					i++
					next := digest(b.Name(), i)
					_, _, _, err := s.UseRefreshToken(ctx, cur, func(rt storage.RefreshToken, g storage.Grant, _ *storage.Session) storage.RefreshDecision {
						return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &storage.RefreshToken{
							Hash: next, GrantID: g.ID, Generation: rt.Generation + 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}
					})
					if err != nil {
						b.Fatal(err)
					}
					cur = next
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
