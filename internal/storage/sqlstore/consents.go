package sqlstore

import (
	"context"

	"github.com/castellan-auth/castellan/internal/storage"
)

func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	c := storage.Consent{UserID: userID, ClientID: clientID}
	var scopes string
	var granted int64
	err := s.queryRow(ctx, `SELECT scopes, granted_at FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID).Scan(&scopes, &granted)
	c.Scopes, c.GrantedAt = splitList(scopes), tm(granted)
	return c, s.mapErr(err)
}

func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	_, err := s.exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, joinList(c.Scopes), ts(c.GrantedAt))
	return err
}

func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return mustAffect(s.execDurable(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID))
}
