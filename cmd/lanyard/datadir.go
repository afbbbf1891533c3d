package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockFile is the file in LANYARD_DATA_DIR whose lock marks the directory as
// taken.
const lockFile = "lanyard.lock"

// lockDataDir makes this process the only `lanyard serve` or `lanyard
// migrate` on an embedded data directory: two of them would race their
// migrations and fight over one SQLite file. The lock is an exclusive flock,
// which the kernel drops when the process dies however it dies, so a crash
// never leaves a stale lock behind. unlock releases it; until then a second
// process fails at once instead of waiting.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, lockFile), err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another lanyard process", dir)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}
