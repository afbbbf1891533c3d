package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lanyard-id/lanyard/internal/config"
)

// lockFile is the file in LANYARD_DATA_DIR whose lock marks the directory as
// taken.
const lockFile = "lanyard.lock"

// lockDataDir makes this process the only `lanyard serve` or `lanyard
// migrate` on an embedded data directory: two of them would race their
// migrations and fight over one SQLite file. The lock is an exclusive flock,
// which the kernel drops when the process dies however it dies, so a crash
// never leaves a stale lock behind. unlock releases it; until then a second
// process fails at once instead of waiting. Holding the lock, it makes the
// directory and its files private (privateDataDir).
func lockDataDir(cfg config.Config, log *slog.Logger) (unlock func(), err error) {
	dir := cfg.DataDir
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
	if err := privateDataDir(cfg, log); err != nil {
		f.Close()
		return nil, err
	}
	// Closing the descriptor releases the lock.
	return func() { f.Close() }, nil
}

// privateDataDir takes group and other permissions away from the data
// directory (0700) and from the database, its WAL, shared-memory and
// journal files, the lock and the generated secret (0600), logging a
// warning for each it had to change. Lanyard creates them private, but a
// directory made beforehand (mkdir under umask 022 gives 0755) or files
// copied in keep whatever they were given, and the database holds password
// hashes and sealed signing keys, the secret opens them. Symlinks are
// followed (placing a file elsewhere is the operator's choice); anything but
// a directory or regular file is left for the store or EnsureSecret to
// refuse.
func privateDataDir(cfg config.Config, log *slog.Logger) error {
	db := cfg.SQLitePath()
	if err := restrict(cfg.DataDir, 0o700, true, log); err != nil {
		return err
	}
	for _, path := range []string{db, db + "-wal", db + "-shm", db + "-journal",
		filepath.Join(cfg.DataDir, lockFile), cfg.SecretPath()} {
		if err := restrict(path, 0o600, false, log); err != nil {
			return err
		}
	}
	return nil
}

// restrict sets path's permissions to perm when they grant anything to
// group or others; a missing path is fine.
func restrict(path string, perm fs.FileMode, dir bool, log *slog.Logger) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case info.IsDir() != dir || !(dir || info.Mode().IsRegular()) || info.Mode().Perm()&0o077 == 0:
		return nil
	}
	if err := os.Chmod(path, perm); err != nil {
		return fmt.Errorf("%s: permissions %04o let other users in, and chmod %04o failed: %w", path, info.Mode().Perm(), perm, err)
	}
	log.Warn("data directory permissions let other users in; fixed, but whoever could read it may have copied it",
		"path", path, "was", fmt.Sprintf("%04o", info.Mode().Perm()), "now", fmt.Sprintf("%04o", perm))
	return nil
}
