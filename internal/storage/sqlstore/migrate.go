package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// The schema lives here once per flavor; goose applies it and records the version.
//
//go:embed migrations
var migrations embed.FS

func (s *Store) migrator() (*goose.Provider, error) {
	dir, err := fs.Sub(migrations, "migrations/"+s.flavor.String())
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.flavor == flavorPostgres {
		dialect = goose.DialectPostgres
		// Several nodes may start at once: an advisory lock lets one migrate.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	opts = append(opts, goose.WithDisableGlobalRegistry(true))
	return goose.NewProvider(dialect, s.w, dir, opts...)
}

// checkSchemaVersion refuses a database migrated by a newer Castellan: this
// binary would not know the meaning of what it finds there.
func checkSchemaVersion(ctx context.Context, m *goose.Provider) error {
	current, known, err := m.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > known {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade Castellan", current, known)
	}
	return nil
}

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Version int64
	Name    string
	Applied bool
}

// Migrations reports every known migration and whether the database has it.
func (s *Store) Migrations(ctx context.Context) ([]MigrationStatus, error) {
	m, err := s.migrator()
	if err != nil {
		return nil, err
	}
	st, err := m.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, r := range st {
		out = append(out, MigrationStatus{Version: r.Source.Version, Name: r.Source.Path, Applied: r.State == goose.StateApplied})
	}
	return out, nil
}
