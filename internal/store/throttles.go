package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanyard-id/lanyard/internal/identity"
)

// Throttle counters (identity.Throttles). Times are Unix milliseconds, so
// the arithmetic below is plain integer arithmetic on both databases. In
// the upsert, t is the stored row and excluded the fresh row the attempt
// would start: excluded.window_start_ms is now, and excluded carries the
// rule (limit_count, window_ms). $1 is the maximum delay.
//
// A stored row is stale, and the attempt starts afresh, once its window and
// its block are both at least one window in the past (the same moment as
// expires_at_ms, when cleanup may delete it). Otherwise the attempt is
// failure number t.failures + 1: below the limit it is simply counted; at
// the limit it blocks the counter until the window ends; past the limit it
// blocks for the next delay, which then doubles up to $1.
const (
	throttleFresh = `(excluded.window_start_ms >= t.window_start_ms + excluded.window_ms
	AND excluded.window_start_ms >= t.blocked_until_ms + excluded.window_ms)`
	throttleDelay   = `(CASE WHEN t.next_delay_ms > 0 THEN t.next_delay_ms WHEN excluded.window_ms < $1 THEN excluded.window_ms ELSE $1 END)`
	throttleBlocked = `(CASE WHEN t.failures + 1 < excluded.limit_count THEN 0
	WHEN t.failures + 1 = excluded.limit_count THEN t.window_start_ms + excluded.window_ms
	ELSE excluded.window_start_ms + ` + throttleDelay + ` END)`
	throttleNextDelay = `(CASE WHEN t.failures + 1 < excluded.limit_count THEN 0
	WHEN t.failures + 1 = excluded.limit_count THEN ` + throttleDelay + `
	WHEN 2 * ` + throttleDelay + ` < $1 THEN 2 * ` + throttleDelay + ` ELSE $1 END)`
	throttleUpsert = `
ON CONFLICT (scope, key) DO UPDATE SET
  failures         = CASE WHEN ` + throttleFresh + ` THEN 1 ELSE t.failures + 1 END,
  window_start_ms  = CASE WHEN ` + throttleFresh + ` THEN excluded.window_start_ms ELSE t.window_start_ms END,
  window_ms        = excluded.window_ms,
  limit_count      = excluded.limit_count,
  blocked_until_ms = CASE WHEN ` + throttleFresh + ` THEN excluded.blocked_until_ms ELSE ` + throttleBlocked + ` END,
  next_delay_ms    = CASE WHEN ` + throttleFresh + ` THEN excluded.next_delay_ms ELSE ` + throttleNextDelay + ` END,
  expires_at_ms    = CASE WHEN ` + throttleFresh + ` THEN excluded.expires_at_ms
                     WHEN ` + throttleBlocked + ` > t.window_start_ms THEN ` + throttleBlocked + ` + excluded.window_ms
                     ELSE t.window_start_ms + excluded.window_ms END
WHERE t.blocked_until_ms <= excluded.window_start_ms
RETURNING scope, key`
)

// Lock order. Every statement that writes several counters locks their
// rows in one order, (scope, key), or two logins sharing counters (the same
// client, the same account) could each hold a row the other waits for: a
// deadlock, which Postgres breaks only after a second, failing one of them.
// The upsert inserts its rows in that order; the settling UPDATE picks its
// rows in it with FOR UPDATE (on Postgres; SQLite has one writer at a time
// and no row locks).

// inLockOrder returns the counters sorted by (scope, key).
func inLockOrder(counters []identity.ThrottleCounter) []identity.ThrottleCounter {
	sorted := slices.Clone(counters)
	slices.SortFunc(sorted, func(a, b identity.ThrottleCounter) int {
		return cmp.Or(strings.Compare(a.Scope, b.Scope), bytes.Compare(a.Key, b.Key))
	})
	return sorted
}

// lockedRows selects the rows matching where, locked in lock order, as
// (s, k), for an UPDATE … FROM.
func (s *Store) lockedRows(where string) string {
	if s.dialect == SQLite {
		return `SELECT scope AS s, key AS k FROM lanyard.throttles WHERE ` + where
	}
	return `SELECT scope AS s, key AS k FROM lanyard.throttles WHERE ` + where + ` ORDER BY scope COLLATE "C", key FOR UPDATE`
}

// ChargeThrottles implements identity.Throttles with one INSERT … ON
// CONFLICT DO UPDATE … RETURNING for all counters: the database serialises
// racing attempts on each row, so concurrent charges never overshoot a
// limit. A blocked counter fails the DO UPDATE's WHERE, is left as it is
// and is not returned.
func (s *Store) ChargeThrottles(ctx context.Context, counters []identity.ThrottleCounter, now time.Time, maxDelay time.Duration) ([]bool, error) {
	charged := make([]bool, len(counters))
	if len(counters) == 0 {
		return charged, nil
	}
	nowMS, maxMS := now.UnixMilli(), maxDelay.Milliseconds()
	args := []any{maxMS}
	rows := make([]string, len(counters))
	for i, c := range inLockOrder(counters) {
		window, blocked, next := c.Window.Milliseconds(), int64(0), int64(0)
		if c.Limit <= 1 { // the first attempt reaches the limit
			blocked, next = nowMS+window, min(window, maxMS)
		}
		n := len(args)
		rows[i] = fmt.Sprintf("($%d, $%d, 1, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8)
		args = append(args, c.Scope, c.Key, nowMS, window, c.Limit, blocked, next, max(nowMS, blocked)+window)
	}
	query := `INSERT INTO lanyard.throttles AS t (scope, key, failures, window_start_ms, window_ms, limit_count, blocked_until_ms, next_delay_ms, expires_at_ms)
VALUES ` + strings.Join(rows, ", ") + throttleUpsert
	err := s.queryCounters(ctx, query, args, counters, nil, func(i int) { charged[i] = true })
	return charged, err
}

// ThrottleBlocks implements identity.Throttles.
func (s *Store) ThrottleBlocks(ctx context.Context, counters []identity.ThrottleCounter) ([]time.Time, error) {
	ends := make([]time.Time, len(counters))
	if len(counters) == 0 {
		return ends, nil
	}
	where, args := countersWhere(counters)
	var ms int64
	err := s.queryCounters(ctx, `SELECT scope, key, blocked_until_ms FROM lanyard.throttles WHERE `+where, args, counters,
		[]any{&ms}, func(i int) {
			if ms > 0 {
				ends[i] = time.UnixMilli(ms).UTC()
			}
		})
	return ends, err
}

// SettleThrottles implements identity.Throttles. A cleared counter keeps
// its row, with no failures and no block, until it expires. A refunded
// counter was not blocked when it was charged (a blocked one is not), so
// the block it has now is the refunded charge's own and goes, and so does
// the escalation that charge added (it doubled the next delay). Otherwise
// an admitted attempt that then succeeds (the owner's own login after an
// attack) would block the account again for the next delay.
func (s *Store) SettleThrottles(ctx context.Context, cleared, refunded []identity.ThrottleCounter) error {
	if len(cleared)+len(refunded) == 0 {
		return nil
	}
	where, args := countersWhere(append(slices.Clone(cleared), refunded...))
	clear := "FALSE"
	if len(cleared) > 0 {
		clear, _ = countersWhere(cleared) // the first parameters are cleared's
	}
	return s.execNumbered(ctx, `UPDATE lanyard.throttles SET
  failures         = CASE WHEN `+clear+` THEN 0 ELSE failures - 1 END,
  blocked_until_ms = 0,
  next_delay_ms    = CASE WHEN `+clear+` OR failures - 1 < limit_count THEN 0
                     WHEN next_delay_ms / 2 >= window_ms THEN next_delay_ms / 2 ELSE next_delay_ms END
FROM (`+s.lockedRows(where)+`) AS locked
WHERE throttles.scope = locked.s AND throttles.key = locked.k AND failures > 0`, args)
}

// PurgeThrottles implements identity.Throttles, in bounded batches through
// the expires_at_ms index.
func (s *Store) PurgeThrottles(ctx context.Context, now time.Time, batch int) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Exec(`DELETE FROM lanyard.throttles WHERE (scope, key) IN
  (SELECT scope, key FROM lanyard.throttles WHERE expires_at_ms <= ? LIMIT ?)`, now.UnixMilli(), batch)
	return res.RowsAffected, s.fail(res.Error)
}

// countersWhere matches the counters' rows, with numbered parameters. A key
// shorter than a full one names every counter of its scope whose key starts
// with it (identity.AccountKeyPrefix): a range of the primary key, from the
// prefix padded with 00 bytes to the prefix padded with ff bytes, which both
// databases compare byte by byte.
func countersWhere(counters []identity.ThrottleCounter) (string, []any) {
	terms := make([]string, len(counters))
	var args []any
	for i, c := range counters {
		n := len(args)
		if len(c.Key) >= sha256.Size {
			terms[i] = fmt.Sprintf("(scope = $%d AND key = $%d)", n+1, n+2)
			args = append(args, c.Scope, c.Key)
			continue
		}
		pad := sha256.Size - len(c.Key)
		low := append(slices.Clone(c.Key), make([]byte, pad)...)
		high := append(slices.Clone(c.Key), bytes.Repeat([]byte{0xff}, pad)...)
		terms[i] = fmt.Sprintf("(scope = $%d AND key BETWEEN $%d AND $%d)", n+1, n+2, n+3)
		args = append(args, c.Scope, low, high)
	}
	return strings.Join(terms, " OR "), args
}

// numberedParams spells numbered parameters for the dialect: $N on Postgres, ?N
// on SQLite. The throttle statements hold no other '$'.
func (s *Store) numberedParams(query string) string {
	if s.dialect == SQLite {
		return strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// execNumbered runs a statement with numbered parameters.
func (s *Store) execNumbered(ctx context.Context, query string, args []any) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.db.Statement.ConnPool.ExecContext(ctx, s.numberedParams(query), args...)
	return s.fail(err)
}

// queryCounters runs a query returning scope, key and then the columns
// extra points to, and calls row with the index of the counter each row
// belongs to once extra holds that row's values.
func (s *Store) queryCounters(ctx context.Context, query string, args []any, counters []identity.ThrottleCounter, extra []any, row func(i int)) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	index := make(map[string]int, len(counters))
	for i, c := range counters {
		index[c.Scope+"\x00"+string(c.Key)] = i
	}
	rows, err := s.db.Statement.ConnPool.QueryContext(ctx, s.numberedParams(query), args...)
	if err != nil {
		return s.fail(err)
	}
	defer rows.Close()
	var (
		scope string
		key   []byte
	)
	dest := append([]any{&scope, &key}, extra...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return s.fail(err)
		}
		i, ok := index[scope+"\x00"+string(key)]
		if !ok {
			return fmt.Errorf("store: a throttle row nobody asked for (%s)", scope)
		}
		row(i)
	}
	return s.fail(rows.Err())
}
