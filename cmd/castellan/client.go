package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/castellan-auth/castellan/internal/client"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

const clientUsage = `Usage:
  castellan client add CLIENT_ID [--name N] [--auth-method M] [--redirect-uri U]... [--grant-type G]...
                       [--scope S] [--allowed-origin O]... [--post-logout-redirect-uri U]...
                       [--skip-consent] [--require-pkce] [--require-par]
                       [--jwks-uri U | --jwks-file F] [--secret-stdin]
  castellan client add --from-yaml FILE [--secret-stdin]   (one client, config-file field names; - is stdin)
  castellan client list
  castellan client show CLIENT_ID
  castellan client rm CLIENT_ID      (deletes the client with its grants)
Each takes --config FILE or --dev. A client_secret_basic or client_secret_post
client gets a generated secret, printed once, unless --secret-stdin reads one
(at least 32 characters) from the first line of standard input.
`

// listFlag collects a repeated flag (--redirect-uri a --redirect-uri b);
// a value may also list several, comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func cmdClient(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return errUsage
	}
	verb := args[0]
	switch verb {
	case "add", "list", "show", "rm":
	default:
		// Before opening anything: an unknown verb must not create a key or a database.
		fmt.Fprint(stderr, clientUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("client "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	var c config.Client
	var redirects, logoutRedirects, origins, grants, responses listFlag
	var fromYAML, jwksFile string
	secretStdin := false
	if verb == "add" {
		fs.StringVar(&c.ClientName, "name", "", "name shown to people on the consent page")
		fs.StringVar(&c.TokenEndpointAuthMethod, "auth-method", "", "token_endpoint_auth_method: none, client_secret_basic (default with a secret), client_secret_post or private_key_jwt")
		fs.Var(&redirects, "redirect-uri", "a redirect URI (repeat for several)")
		fs.Var(&logoutRedirects, "post-logout-redirect-uri", "a post-logout redirect URI (repeat for several)")
		fs.Var(&origins, "allowed-origin", "a browser origin allowed to call the token endpoint (repeat for several)")
		fs.Var(&grants, "grant-type", "a grant type (repeat; default authorization_code)")
		fs.Var(&responses, "response-type", "a response type (repeat; default code)")
		fs.StringVar(&c.Scope, "scope", "", "scopes the client may ask for, space-separated (default openid)")
		fs.BoolVar(&c.SkipConsent, "skip-consent", false, "first-party client: no consent page")
		fs.BoolVar(&c.RequirePKCE, "require-pkce", false, "require PKCE of a confidential client too")
		fs.BoolVar(&c.RequirePushedAuthorizationRequests, "require-par", false, "accept only pushed authorization requests (RFC 9126)")
		fs.StringVar(&c.JWKSURI, "jwks-uri", "", "private_key_jwt: where the client publishes its public keys")
		fs.StringVar(&jwksFile, "jwks-file", "", "private_key_jwt: a file holding the client's public JSON Web Key Set")
		fs.StringVar(&fromYAML, "from-yaml", "", "read the client from a YAML `FILE` (- for standard input) with the config file's field names")
		fs.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from the first line of standard input")
	}
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	needID := verb != "list" && !(verb == "add" && fromYAML != "")
	if needID && len(rest) != 1 || !needID && len(rest) != 0 {
		fmt.Fprint(stderr, clientUsage)
		return errUsage
	}
	if verb == "add" {
		if fromYAML != "" {
			if fs.NFlag() > 1+boolCount(secretStdin)+boolCount(af.config != "")+boolCount(af.dev) {
				return errors.New("--from-yaml takes the whole client from the file: give no other client flags")
			}
			if c, err = readClientYAML(fromYAML, stdin); err != nil {
				return err
			}
		} else {
			c.ClientID = rest[0]
			c.RedirectURIs, c.PostLogoutRedirectURIs, c.AllowedOrigins = redirects, logoutRedirects, origins
			c.GrantTypes, c.ResponseTypes = grants, responses
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return err
				}
				c.JWKS = config.JSON(b)
			}
		}
	}
	cfg, err := af.load(env)
	if err != nil {
		return err
	}
	store, master, err := adminStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer store.Close()

	find := func(id string) (storage.Client, error) {
		cl, err := store.GetClient(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return cl, fmt.Errorf("no client %q", id)
		}
		return cl, err
	}
	switch verb {
	case "add":
		if _, err := store.GetClient(ctx, c.ClientID); err == nil {
			return fmt.Errorf("client %q already exists (castellan client rm it first)", c.ClientID)
		}
		generated, err := clientSecret(&c, secretStdin, stdin)
		if err != nil {
			return err
		}
		if err := validateClient(cfg, c); err != nil {
			return err
		}
		if err := store.UpsertClient(ctx, client.FromConfig(c, client.NewSecrets(master), nil, clock.System{})); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added client %s\n", c.ClientID)
		if generated != "" {
			fmt.Fprintf(stdout, "client secret (shown once, store it now): %s\n", generated)
		}
	case "list":
		clients, err := store.ListClients(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH\tGRANT_TYPES\tREDIRECT_URIS\tCREATED")
		for _, cl := range clients {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.Name, cl.TokenEndpointAuthMethod, orDash(strings.Join(cl.GrantTypes, ",")),
				orDash(strings.Join(cl.RedirectURIs, ",")), cl.CreatedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	case "show":
		cl, err := find(rest[0])
		if err != nil {
			return err
		}
		showClient(stdout, cl)
	case "rm":
		cl, err := find(rest[0])
		if err != nil {
			return err
		}
		if err := store.DeleteClient(ctx, cl.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed client %s and its grants\n", cl.ID)
		if oauth.Contains(clientIDs(cfg.Clients), cl.ID) {
			fmt.Fprintf(stderr, "note: %s is still declared in the config file and comes back at the next start\n", cl.ID)
		}
	}
	return nil
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clientIDs(cs []config.Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ClientID
	}
	return out
}

// readClientYAML reads one client in the config file's syntax.
func readClientYAML(path string, stdin io.Reader) (config.Client, error) {
	var c config.Client
	if path == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return c, err
		}
		dir, err := os.MkdirTemp("", "castellan-client-")
		if err != nil {
			return c, err
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "client.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return c, err
		}
	}
	// No environment: CASTELLAN_* variables configure the provider, not this client.
	if err := config.Decode(path, nil, &c); err != nil {
		return c, err
	}
	if c.ClientID == "" {
		return c, errors.New("the YAML names no client_id")
	}
	return c, nil
}

// clientSecret gives a client that authenticates with a secret one: read
// from stdin, or generated (256 bits) and returned to be shown once.
func clientSecret(c *config.Client, fromStdin bool, stdin io.Reader) (generated string, err error) {
	method := c.TokenEndpointAuthMethod
	if method == "" {
		// As in the config file: with a secret, client_secret_basic; else public.
		method = oauth.AuthNone
		if fromStdin || c.ClientSecret != "" || c.ClientSecretHash != "" {
			method = oauth.AuthClientSecretBasic
		}
	}
	needs := method == oauth.AuthClientSecretBasic || method == oauth.AuthClientSecretPost
	switch {
	case fromStdin && !needs:
		return "", fmt.Errorf("--secret-stdin: a %s client has no secret", method)
	case fromStdin:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		c.ClientSecret, c.ClientSecretHash = strings.TrimRight(line, "\r\n"), ""
	case needs && c.ClientSecret == "" && c.ClientSecretHash == "":
		c.ClientSecret = opaque.New()
		generated = c.ClientSecret
	}
	return generated, nil
}

// validateClient applies the config file's rules to c, naming its fields.
func validateClient(cfg *config.Config, c config.Client) error {
	check := *cfg
	check.Clients = []config.Client{c}
	check.Users = nil
	var problems []string
	for _, p := range check.Validate() {
		if rest, ok := strings.CutPrefix(p, "clients[0]."); ok {
			problems = append(problems, rest)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("client %s: %s", c.ClientID, strings.Join(problems, "; "))
	}
	return nil
}

func showClient(w io.Writer, c storage.Client) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) {
		switch x := v.(type) {
		case []string:
			v = orDash(strings.Join(x, " "))
		case string:
			v = orDash(x)
		}
		fmt.Fprintf(tw, "%s\t%v\n", k, v)
	}
	secret := "-"
	if len(c.SecretDigest) > 0 {
		secret = "set (stored as a keyed digest)"
	}
	keys := "-"
	switch {
	case c.JWKSURI != "":
		keys = "jwks_uri " + c.JWKSURI
	case c.JWKS != "":
		keys = "jwks (inline)"
	}
	row("client_id", c.ID)
	row("client_name", c.Name)
	row("token_endpoint_auth_method", c.TokenEndpointAuthMethod)
	row("strict_token_endpoint_auth_method", c.StrictTokenEndpointAuthMethod)
	row("client_secret", secret)
	row("keys", keys)
	row("token_endpoint_auth_signing_alg", c.TokenEndpointAuthSigningAlg)
	row("redirect_uris", c.RedirectURIs)
	row("post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	row("allowed_origins", c.AllowedOrigins)
	row("grant_types", c.GrantTypes)
	row("response_types", c.ResponseTypes)
	row("scope", c.Scopes)
	row("audience", c.Audience)
	row("profile", c.Profile)
	row("skip_consent", c.SkipConsent)
	row("require_pkce", c.RequirePKCE)
	row("require_pushed_authorization_requests", c.RequirePushedAuthorizationRequests)
	row("dpop_bound_access_tokens", c.DPoPBoundAccessTokens)
	row("backchannel_logout_uri", c.BackchannelLogoutURI)
	row("frontchannel_logout_uri", c.FrontchannelLogoutURI)
	row("created", c.CreatedAt.Format(time.RFC3339))
	row("updated", c.UpdatedAt.Format(time.RFC3339))
	tw.Flush()
}
