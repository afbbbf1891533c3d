package store

import (
	"context"
	"io/fs"
)

// MigrateUpTo applies the migrations up to version upTo only, so a test can
// check what a later migration does to existing rows.
func (s *Store) MigrateUpTo(ctx context.Context, upTo int64) ([]string, error) {
	return s.migrate(ctx, upTo)
}

// InSchema is fsys with the search_path lines a PostgreSQL migration gets.
func InSchema(fsys fs.FS, schema string) fs.FS { return inSchema{fsys, schema} }

// PostgresMigrations are the embedded PostgreSQL migrations.
func PostgresMigrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations/postgres")
	if err != nil {
		panic(err)
	}
	return sub
}
