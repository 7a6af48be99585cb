// Package sqlstore implements storage.Storage on SQL databases: SQLite through
// modernc.org/sqlite (pure Go, the embedded default) and PostgreSQL through
// jackc/pgx/v5 (for several nodes sharing one database).
//
// Both flavors share every query; they differ only in placeholders, row locks
// and how constraint violations are reported. Queries are written with "?"
// placeholders and rewritten once for PostgreSQL.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

type flavor int

const (
	flavorSQLite flavor = iota
	flavorPostgres
)

func (f flavor) String() string {
	if f == flavorPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Options tune a Store. The zero value is a sensible default.
type Options struct {
	// MaxOpenConns bounds the PostgreSQL pool (default 20) or the SQLite reader
	// pool (default 8). SQLite always has exactly one writer connection.
	MaxOpenConns int
	// MaxIdleConns defaults to MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime recycles PostgreSQL connections (default 30m).
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes PostgreSQL connections idle this long, so that a
	// node gives connections back to the server after a burst (0: never).
	ConnMaxIdleTime time.Duration
	// SkipMigrations opens the store without applying pending migrations; Open
	// still refuses a schema newer than this binary knows.
	SkipMigrations bool
	// ReadOnly opens the database so that every write fails (SQLite
	// mode=ro, PostgreSQL default_transaction_read_only) and applies no
	// migrations: to look at a live database without touching it, and to
	// see what a node does when its database stops taking writes.
	ReadOnly bool
	// Log receives warnings about the database (a SQLite file whose mode was
	// tightened); nil discards them.
	Log *slog.Logger
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// Store is a storage.Storage on SQLite or PostgreSQL.
type Store struct {
	flavor flavor
	// path is the SQLite database file ("" for PostgreSQL), named in errors.
	path string
	// w takes every write transaction; r serves reads. For SQLite, w has one
	// connection so writers queue in Go instead of spinning on SQLITE_BUSY; for
	// PostgreSQL both are the same pool.
	w, r *sql.DB
	// locks takes TryLock's locks: a process-wide mutex per SQLite file, or a
	// PostgreSQL session advisory lock on a connection of its own.
	locks locker

	rebound sync.Map // query text with ? → flavor's text

	// prepared holds SQLite's prepared statements, one cache per pool.
	prepared [2]stmtCache

	// commit runs SQLite's write transactions in batches (nil for PostgreSQL,
	// whose connections write side by side).
	commit *committer
}

var _ storage.Storage = (*Store)(nil)

// Open connects to the database named by dsn, applies pending migrations unless
// told not to, and returns the store. Accepted forms:
//
//	sqlite:///absolute/path.db   sqlite://relative/path.db   sqlite:relative.db
//	postgres://user@host:5432/db?sslmode=disable            (also postgresql://)
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s, err := open(dsn, opts)
	if err != nil {
		return nil, err
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, s.classifyOpenErr("connect to", err)
	}
	m, err := s.migrator()
	if err != nil {
		s.Close()
		return nil, err
	}
	if !opts.SkipMigrations && !opts.ReadOnly {
		if _, err := m.Up(ctx); err != nil {
			s.Close()
			return nil, s.classifyOpenErr("migrate", err)
		}
	}
	if err := checkSchemaVersion(ctx, m); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func open(dsn string, opts Options) (*Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(sqlitePath(dsn), opts)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(dsn, opts)
	default:
		return nil, fmt.Errorf("storage %q: want sqlite:PATH or postgres://…", redactDSN(dsn))
	}
}

// sqlitePath turns sqlite:///abs, sqlite://rel and sqlite:rel into a file path.
func sqlitePath(dsn string) string {
	p := strings.TrimPrefix(dsn, "sqlite:")
	if strings.HasPrefix(p, "//") {
		p = p[2:] // "///abs" → "/abs", "//rel" → "rel"
	}
	return filepath.Clean(p)
}

// redactDSN hides a password in a connection string before it reaches an error.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.commit != nil {
		s.commit.close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.mapErr(s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one))
}

// q returns the query text for this flavor.
func (s *Store) q(query string) string {
	if s.flavor == flavorSQLite {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	s.rebound.Store(query, b.String())
	return b.String()
}

// forShare is the shared row-lock suffix of a SELECT inside a write transaction.
func (s *Store) forShare() string {
	if s.flavor == flavorPostgres {
		return " FOR SHARE"
	}
	return ""
}

// forUpdate is the row-lock suffix of a SELECT inside a write transaction.
// SQLite needs none: its write transactions are exclusive (BEGIN IMMEDIATE).
func (s *Store) forUpdate() string {
	if s.flavor == flavorPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// exec runs one write statement outside any transaction of the caller's. On
// SQLite it joins the committer's next batch, as a transaction of its own.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.execWrite(ctx, false, query, args...)
}

// execDurable is exec for a write that must survive a power loss once it
// returns (see commit.go, Durability).
func (s *Store) execDurable(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.execWrite(ctx, true, query, args...)
}

func (s *Store) execWrite(ctx context.Context, durable bool, query string, args ...any) (sql.Result, error) {
	if s.commit != nil {
		var res sql.Result
		err := s.commit.do(ctx, func(t *tx) error {
			var err error
			res, err = t.exec(query, args...)
			return err
		}, durable)
		return res, err
	}
	// PostgreSQL: every commit is durable (synchronous_commit = on).
	res, err := s.w.ExecContext(ctx, s.q(query), args...)
	return res, s.mapErr(err)
}

// writeRow runs one write statement that returns a row (… RETURNING) and
// scans it, like exec.
func (s *Store) writeRow(ctx context.Context, scan func(*sql.Row) error, query string, args ...any) error {
	if s.commit != nil {
		return s.commit.do(ctx, func(t *tx) error { return t.s.mapErr(scan(t.queryRow(query, args...))) }, false)
	}
	return s.mapErr(scan(s.w.QueryRowContext(ctx, s.q(query), args...)))
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.stmt(ctx, poolRead, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, s.q(query), args...)
}

// The pools a statement can be prepared on.
const (
	poolWrite = iota
	poolRead
)

// stmtCache maps query text to its prepared statement on one pool.
type stmtCache struct {
	m sync.Map
	n atomic.Int32
}

// maxPrepared bounds each statement cache. Every query is a constant in this
// package, so the bound is never reached; it only keeps a future dynamically
// built query from growing the cache without end.
const maxPrepared = 256

// stmt returns the prepared statement of query on pool, preparing it the first
// time, or nil to run the query unprepared. Only SQLite uses them: parsing
// costs it more than running one of these short queries, and database/sql
// keeps a statement prepared on each connection of the pool that ran it.
// PostgreSQL needs none: pgx caches prepared statements per connection itself.
func (s *Store) stmt(ctx context.Context, pool int, query string) *sql.Stmt {
	if s.flavor != flavorSQLite {
		return nil
	}
	c := &s.prepared[pool]
	if v, ok := c.m.Load(query); ok {
		return v.(*sql.Stmt)
	}
	if c.n.Load() >= maxPrepared {
		return nil
	}
	db := s.w
	if pool == poolRead {
		db = s.r
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared call reports the error
	}
	if v, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt)
	}
	c.n.Add(1)
	return st
}

// txStmt is stmt for a write transaction: the pool's statement bound to it,
// reusing what is already prepared on the transaction's connection. A
// statement not yet prepared runs unprepared this once and is prepared after
// the transaction (the committer calls prepareLater): preparing on the pool
// here would wait for SQLite's only writer connection, which this transaction
// holds.
func (t *tx) txStmt(query string) *sql.Stmt {
	if t.s.flavor != flavorSQLite {
		return nil
	}
	if v, ok := t.s.prepared[poolWrite].m.Load(query); ok {
		return t.tx.StmtContext(t.ctx, v.(*sql.Stmt))
	}
	t.unprepared = append(t.unprepared, query)
	return nil
}

// prepareLater prepares the statements the transaction ran unprepared, once
// it has ended and given the writer connection back.
func (t *tx) prepareLater() {
	for _, q := range t.unprepared {
		t.s.stmt(context.Background(), poolWrite, q)
	}
}

// inTx runs fn in one write transaction, committing only if fn returns nil or an
// error wrapped by keepErr (a decision that must still be stored). On SQLite
// the committer runs it, perhaps beside others in one commit (commit.go);
// either way fn's writes are committed when inTx returns nil or a keepErr's error.
func (s *Store) inTx(ctx context.Context, fn func(tx *tx) error) error {
	return s.inWriteTx(ctx, false, fn)
}

// inDurableTx is inTx for writes that must survive a power loss once it
// returns: a sign-out, a revocation, an administrator's change (see
// commit.go, Durability). On PostgreSQL every commit is.
func (s *Store) inDurableTx(ctx context.Context, fn func(tx *tx) error) error {
	return s.inWriteTx(ctx, true, fn)
}

func (s *Store) inWriteTx(ctx context.Context, durable bool, fn func(tx *tx) error) error {
	if s.commit != nil {
		return s.commit.do(ctx, fn, durable)
	}
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err)
	}
	t := &tx{s: s, tx: sqlTx, ctx: ctx}
	ferr := fn(t)
	var keep *keepErr
	if ferr != nil && !errors.As(ferr, &keep) {
		sqlTx.Rollback()
		return ferr
	}
	if err := sqlTx.Commit(); err != nil {
		return s.mapErr(err)
	}
	if keep != nil {
		return keep.err
	}
	return nil
}

// keepErr is returned from an inTx function to commit what it did and still
// return err to the caller.
type keepErr struct{ err error }

func (k *keepErr) Error() string { return k.err.Error() }

type tx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	// unprepared lists the queries txStmt found not yet prepared.
	unprepared []string
	// mustSync says the running request decided to need durability.
	mustSync bool
}

// syncOnCommit makes the running request's writes durable, as if it had been
// started with inDurableTx: for a decision taken inside the transaction (a
// reused refresh token or code revokes its grant).
func (t *tx) syncOnCommit() { t.mustSync = true }

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	if st := t.txStmt(query); st != nil {
		res, err := st.ExecContext(t.ctx, args...)
		return res, t.s.mapErr(err)
	}
	res, err := t.tx.ExecContext(t.ctx, t.s.q(query), args...)
	return res, t.s.mapErr(err)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	if st := t.txStmt(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, t.s.q(query), args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	if st := t.txStmt(query); st != nil {
		rows, err := st.QueryContext(t.ctx, args...)
		return rows, t.s.mapErr(err)
	}
	rows, err := t.tx.QueryContext(t.ctx, t.s.q(query), args...)
	return rows, t.s.mapErr(err)
}

// mapErr turns driver errors into storage's named errors; everything else is
// wrapped without the driver's details leaking into the error type.
func (s *Store) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return storage.ErrNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, storage.ErrDiskFull):
		return err // mapped already
	}
	switch constraintKind(s.flavor, err) {
	case constraintUnique:
		return storage.ErrConflict
	case constraintForeignKey:
		return storage.ErrNotFound
	}
	if full := s.diskFull(err); full != nil {
		return full
	}
	return fmt.Errorf("%s: %v", s.flavor, err)
}

type constraint int

const (
	constraintNone constraint = iota
	constraintUnique
	constraintForeignKey
)

// mustAffect returns ErrNotFound when an update or delete touched no row.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// Times are stored as Unix nanoseconds; zero time is 0.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func tm(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// qualified prefixes each column of a column list (grantColumns, …) with
// alias, for the select list of a join that reads several records at once.
func qualified(alias, columns string) string {
	fields := strings.Split(columns, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// Lists of space-free words (scopes, amr values) are stored space-separated.
func joinList(l []string) string { return strings.Join(l, " ") }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}
