package identity

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// clockSamples is how many round trips one Sync takes; the one with the
// shortest round trip bounds the measuring error best.
const clockSamples = 3

// DatabaseClock is the process clock corrected by a measured offset to the
// database's clock. Session decisions (rotation time, grace, idle and
// absolute expiry) use it, so replicas whose own clocks disagree by minutes
// still decide alike: they all read, in effect, the database's clock. It is
// read on every request without a round trip; Run re-measures the offset
// periodically, since process clocks drift and get stepped.
type DatabaseClock struct {
	source ClockSource
	local  func() time.Time
	offset atomic.Int64 // database minus local, in nanoseconds
}

// NewDatabaseClock returns a clock with no offset yet; call Sync before use.
func NewDatabaseClock(source ClockSource, local func() time.Time) *DatabaseClock {
	return &DatabaseClock{source: source, local: local}
}

// Now is the database's current time, to the microsecond both databases keep.
func (c *DatabaseClock) Now() time.Time {
	return c.local().Add(time.Duration(c.offset.Load())).UTC().Truncate(time.Microsecond)
}

// Offset is the last measured difference between the database's clock and
// the process clock.
func (c *DatabaseClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Sync measures the offset: the database's reading is taken to be the
// local midpoint of the round trip that fetched it (NTP's assumption), and
// of several samples the one with the shortest round trip wins.
func (c *DatabaseClock) Sync(ctx context.Context) error {
	bestRTT := time.Duration(-1)
	var best time.Duration
	for range clockSamples {
		sent := c.local()
		db, err := c.source.DatabaseNow(ctx)
		received := c.local()
		if err != nil {
			return err
		}
		rtt := received.Sub(sent)
		if bestRTT < 0 || rtt < bestRTT {
			bestRTT = rtt
			best = db.Sub(sent.Add(rtt / 2))
		}
	}
	c.offset.Store(int64(best))
	return nil
}

// Run re-measures the offset every interval until ctx ends. A failed
// measurement keeps the last offset (the database being briefly away does
// not move anyone's clock) and is logged.
func (c *DatabaseClock) Run(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		before := c.Offset()
		if err := c.Sync(ctx); err != nil {
			if ctx.Err() == nil {
				log.Warn("database clock measurement failed; keeping the last offset", "error", err, "offset", before.String())
			}
			continue
		}
		if drift := c.Offset() - before; drift > time.Second || drift < -time.Second {
			log.Info("database clock offset changed", "offset", c.Offset().String(), "change", drift.String())
		}
	}
}
