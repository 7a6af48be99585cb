package mint

import (
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/opaque"
)

// AccessParams describe an access token to issue.
type AccessParams struct {
	ClientID string
	// Subject is the user id, or the client id for client credentials.
	Subject  string
	Scopes   []string
	GrantID  string
	SID      string
	AuthTime time.Time
	AMR      []string
	IssuedAt time.Time
	Expiry   time.Time
	// JKT binds the token to a DPoP key thumbprint.
	JKT string
	// Audience is the client's registered audience (storage.Client.Audience):
	// the APIs the token is for. Empty: the minter's default (see New).
	Audience []string
}

// NewAccess signs an access token and returns it with its claims.
func (m *Minter) NewAccess(p AccessParams) (string, AccessClaims, error) {
	aud := Audience(p.Audience)
	if len(aud) == 0 {
		aud = m.audience
	}
	c := AccessClaims{
		Issuer: m.issuer, Subject: p.Subject, Audience: aud, ClientID: p.ClientID,
		Scope: strings.Join(p.Scopes, " "), IssuedAt: p.IssuedAt.Unix(), NotBefore: p.IssuedAt.Unix(),
		Expiry: p.Expiry.Unix(), JTI: opaque.ID(), SID: p.SID, AMR: p.AMR, Grant: p.GrantID,
	}
	if !p.AuthTime.IsZero() {
		c.AuthTime = p.AuthTime.Unix()
	}
	if p.JKT != "" {
		c.Confirmation = &Confirmation{JKT: p.JKT}
	}
	tok, err := m.Access(c)
	return tok, c, err
}

// IDParams describe an ID token to issue.
type IDParams struct {
	ClientID string
	Subject  string
	SID      string
	Nonce    string
	AuthTime time.Time
	AMR      []string
	ACR      string
	IssuedAt time.Time
	Expiry   time.Time
	// AccessToken and Code, when set, are bound by at_hash and c_hash.
	AccessToken string
	Code        string
	User        UserClaims
}

// NewID signs an ID token with alg.
func (m *Minter) NewID(alg string, p IDParams) (string, error) {
	c := IDClaims{
		Issuer: m.issuer, Subject: p.Subject, Audience: Audience{p.ClientID}, Expiry: p.Expiry.Unix(),
		IssuedAt: p.IssuedAt.Unix(), Nonce: p.Nonce, ACR: p.ACR, AMR: p.AMR,
		AuthorizedParty: p.ClientID, SID: p.SID, UserClaims: p.User,
	}
	if !p.AuthTime.IsZero() {
		c.AuthTime = p.AuthTime.Unix()
	}
	var err error
	if p.AccessToken != "" {
		if c.AccessTokenHash, err = HalfHash(alg, p.AccessToken); err != nil {
			return "", err
		}
	}
	if p.Code != "" {
		if c.CodeHash, err = HalfHash(alg, p.Code); err != nil {
			return "", err
		}
	}
	return m.ID(alg, c)
}
