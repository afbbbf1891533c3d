package store

import "context"

// MigrateUpTo applies the migrations up to version upTo only, so a test can
// check what a later migration does to existing rows.
func (s *Store) MigrateUpTo(ctx context.Context, upTo int64) ([]string, error) {
	return s.migrate(ctx, upTo)
}
