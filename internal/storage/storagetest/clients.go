package storagetest

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testClientsUpsert(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetClient(ctx, "spa")
	wantErr(t, "GetClient(unknown)", err, storage.ErrNotFound)

	c := newClient("spa")
	mustUpsertClient(t, s, c)
	got, err := s.GetClient(ctx, "spa")
	wantErr(t, "GetClient", err, nil)
	wantEqual(t, "GetClient", got, c)

	// A second upsert replaces every field but CreatedAt, booleans back to false included.
	up := storage.Client{
		ID:                      "spa",
		Name:                    "Renamed",
		TokenEndpointAuthMethod: "none",
		RedirectURIs:            []string{"http://127.0.0.1:9100/callback"},
		GrantTypes:              []string{"authorization_code"},
		ResponseTypes:           []string{"code", "id_token token"},
		Scopes:                  []string{"openid"},
		CreatedAt:               t0.Add(time.Hour),
		UpdatedAt:               t0.Add(2*time.Hour + time.Nanosecond),
	}
	mustUpsertClient(t, s, up)
	want := up
	want.CreatedAt = c.CreatedAt
	got, err = s.GetClient(ctx, "spa")
	wantErr(t, "GetClient after upsert", err, nil)
	wantEqual(t, "GetClient after upsert", got, want)
}

// The record documents SecretDigest as nil for public clients; callers test for nil.
func testClientsPublicSecret(t *testing.T, s storage.Storage) {
	c := newClient("spa")
	c.TokenEndpointAuthMethod, c.SecretDigest = "none", nil
	mustUpsertClient(t, s, c)
	got, err := s.GetClient(t.Context(), "spa")
	wantErr(t, "GetClient", err, nil)
	if got.SecretDigest != nil {
		t.Errorf("SecretDigest of a public client: got %#v, want nil", got.SecretDigest)
	}
	if !got.Public() {
		t.Errorf("Public(): got false, want true")
	}
}

func testClientsListDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	got, err := s.ListClients(ctx)
	wantErr(t, "ListClients(empty)", err, nil)
	if len(got) != 0 {
		t.Fatalf("ListClients(empty): got %d clients, want 0", len(got))
	}
	f := setup(t, s, "a")
	other := newClient("other")
	other.SecretDigest = nil
	mustUpsertClient(t, s, other)
	got, err = s.ListClients(ctx)
	wantErr(t, "ListClients", err, nil)
	id := func(c storage.Client) string { return c.ID }
	wantEqual(t, "ListClients", sortBy(got, id), sortBy([]storage.Client{f.client, other}, id))

	// Deleting a client that has consents and grants succeeds, and its grants stop working.
	wantErr(t, "SaveConsent", s.SaveConsent(ctx, storage.Consent{UserID: "a", ClientID: f.client.ID, Scopes: []string{"openid"}, GrantedAt: t0}), nil)
	mustCreateGrant(t, s, newGrant("g", f.client.ID, "a", f.session.SID), nil)
	wantErr(t, "DeleteClient", s.DeleteClient(ctx, f.client.ID), nil)
	_, err = s.GetClient(ctx, f.client.ID)
	wantErr(t, "GetClient(deleted)", err, storage.ErrNotFound)
	if g, err := s.GetGrant(ctx, "g"); err == nil && g.Active(t0) {
		t.Errorf("grant of a deleted client: still active")
	}
	wantErr(t, "DeleteClient(again)", s.DeleteClient(ctx, f.client.ID), storage.ErrNotFound)
	got, err = s.ListClients(ctx)
	wantErr(t, "ListClients", err, nil)
	wantEqual(t, "ListClients after delete", got, []storage.Client{other})
}

func testConsents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	_, err := s.GetConsent(ctx, "a", f.client.ID)
	wantErr(t, "GetConsent(none)", err, storage.ErrNotFound)

	c := storage.Consent{UserID: "a", ClientID: f.client.ID, Scopes: []string{"openid", "profile"}, GrantedAt: t0}
	wantErr(t, "SaveConsent", s.SaveConsent(ctx, c), nil)
	got, err := s.GetConsent(ctx, "a", f.client.ID)
	wantErr(t, "GetConsent", err, nil)
	wantEqual(t, "GetConsent", got, c)

	// Saving again replaces the scopes (a narrower set included).
	c.Scopes, c.GrantedAt = []string{"email"}, t0.Add(time.Hour)
	wantErr(t, "SaveConsent(replace)", s.SaveConsent(ctx, c), nil)
	got, err = s.GetConsent(ctx, "a", f.client.ID)
	wantErr(t, "GetConsent after replace", err, nil)
	wantEqual(t, "GetConsent after replace", got, c)

	wantErr(t, "DeleteConsent", s.DeleteConsent(ctx, "a", f.client.ID), nil)
	_, err = s.GetConsent(ctx, "a", f.client.ID)
	wantErr(t, "GetConsent(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteConsent(again)", s.DeleteConsent(ctx, "a", f.client.ID), storage.ErrNotFound)
}
