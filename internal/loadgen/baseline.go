package loadgen

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"
)

// Baseline is the raw cost of the cryptography a provider cannot avoid, in
// CPU time, measured in this process on one goroutine locked to one OS thread
// (one core; argon2id with parallelism p uses p) with the libraries Castellan uses: go-jose for signatures, x/crypto for
// argon2id. Throughput divided by the ceiling these costs set says how much of
// the machine goes to anything else.
type Baseline struct {
	// AccessAlg signs access tokens; IDAlg signs the bench SPA's ID tokens.
	AccessAlg string `json:"access_alg"`
	IDAlg     string `json:"id_alg"`
	// SignMicros and VerifyMicros are µs per compact JWS signature or
	// verification (of a payload like a real access token), by algorithm.
	SignMicros   map[string]float64 `json:"sign_us"`
	VerifyMicros map[string]float64 `json:"verify_us"`
	// Argon2Millis is ms per argon2id hash with Argon2's parameters (0: not measured).
	Argon2       Argon2Params `json:"argon2id"`
	Argon2Millis float64      `json:"argon2id_ms,omitempty"`
}

// BaselineOptions choose what the baseline measures.
type BaselineOptions struct {
	// Budget is how long each measurement runs at least (default 500 ms).
	Budget time.Duration
	// SkipArgon2 leaves the password hash out (scenarios without sign-in).
	SkipArgon2 bool
}

// jwtAlg returns the "alg" of a compact JWS header, "" if it has none.
func jwtAlg(token string) string {
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	json.Unmarshal(b, &hdr)
	return hdr.Alg
}

// jwtPayload returns the decoded payload of a compact JWS (nil if malformed).
func jwtPayload(token string) []byte {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	return b
}

func signingKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("baseline: no key type known for %q", alg)
}

// processCPU returns the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perOp runs f repeatedly on one locked OS thread for at least budget (and at
// least min times) and returns the mean CPU time per call: the process's CPU
// time, so that other load on a shared machine does not inflate it (nothing
// else of the load generator runs while the baseline is measured), and so that
// it compares with the server's CPU time per operation.
func perOp(ctx context.Context, budget time.Duration, minRuns int, f func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f(); err != nil { // warm-up, and a check that it works
		return 0, err
	}
	start, cpu0 := time.Now(), processCPU()
	n := 0
	for n < minRuns || time.Since(start) < budget {
		if err := f(); err != nil {
			return 0, err
		}
		n++
		if ctx.Err() != nil {
			break
		}
	}
	return (processCPU() - cpu0) / time.Duration(n), nil
}

// measureJOSE measures signing and verifying payload as a typ at+jwt compact
// JWS with a fresh key of alg, as the provider does.
func measureJOSE(ctx context.Context, alg string, payload []byte, budget time.Duration) (sign, verify time.Duration, err error) {
	key, err := signingKey(alg)
	if err != nil {
		return 0, 0, err
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: "baseline", Algorithm: alg}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jwk},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return 0, 0, err
	}
	var compact string
	sign, err = perOp(ctx, budget, 20, func() error {
		jws, err := signer.Sign(payload)
		if err != nil {
			return err
		}
		compact, err = jws.CompactSerialize()
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	pub := key.Public()
	verify, err = perOp(ctx, budget, 20, func() error {
		jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			return err
		}
		_, err = jws.Verify(pub)
		return err
	})
	return sign, verify, err
}

// MeasureBaseline measures signing and verification for every algorithm in
// algs (accessAlg and idAlg among them) over payload, and one argon2id hash
// with p unless skipped.
func MeasureBaseline(ctx context.Context, accessAlg, idAlg string, payload []byte, p Argon2Params, opt BaselineOptions) (*Baseline, error) {
	if opt.Budget <= 0 {
		opt.Budget = 500 * time.Millisecond
	}
	if len(payload) == 0 {
		payload = []byte(`{"iss":"http://127.0.0.1:9000","sub":"bench-svc","aud":"http://127.0.0.1:9000","exp":1900000000,"iat":1800000000,"jti":"AAAAAAAAAAAAAAAAAAAAAA","client_id":"bench-svc","scope":"api:read api:write"}`)
	}
	b := &Baseline{AccessAlg: accessAlg, IDAlg: idAlg, SignMicros: map[string]float64{}, VerifyMicros: map[string]float64{}, Argon2: p}
	for _, alg := range []string{accessAlg, idAlg} {
		if alg == "" {
			continue
		}
		if _, done := b.SignMicros[alg]; done {
			continue
		}
		s, v, err := measureJOSE(ctx, alg, payload, opt.Budget)
		if err != nil {
			return nil, err
		}
		b.SignMicros[alg] = micros(s)
		b.VerifyMicros[alg] = micros(v)
	}
	if !opt.SkipArgon2 && p.MemoryKiB > 0 && p.Iterations > 0 && p.Parallelism > 0 {
		salt := make([]byte, 16)
		rand.Read(salt)
		d, err := perOp(ctx, opt.Budget, 3, func() error {
			argon2.IDKey([]byte("correct horse battery staple"), salt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
			return nil
		})
		if err != nil {
			return nil, err
		}
		b.Argon2Millis = ms(d)
	}
	return b, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
