package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// devSecretFile holds the secret generated for the embedded default.
const devSecretFile = "secret"

// SecretPath is where the embedded default keeps its generated secret.
func (c Config) SecretPath() string { return filepath.Join(c.DataDir, devSecretFile) }

// EnsureSecret fills in c.Secret for the embedded default: it reads the
// secret generated at first start from the data directory, or generates one
// (0600, in a 0700 directory). Postgres deployments must set LANYARD_SECRET;
// Load already refused to start without it.
func (c *Config) EnsureSecret() (generated bool, err error) {
	if c.Secret != nil {
		return false, nil
	}
	path := c.SecretPath()
	if b, err := os.ReadFile(path); err == nil {
		secret := strings.TrimSpace(string(b))
		if len(secret) < MinSecretBytes {
			return false, fmt.Errorf("%s: the stored secret is shorter than %d bytes", path, MinSecretBytes)
		}
		// Refused rather than fixed here, as commands other than serve and
		// migrate have no log to say so in; those two take the data
		// directory first, which fixes the mode with a warning.
		if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
			return false, fmt.Errorf("%s: permissions %04o are too open; run chmod 600 on it (lanyard serve and migrate fix this themselves)", path, info.Mode().Perm())
		}
		c.Secret = []byte(secret)
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return false, fmt.Errorf("create data directory: %w", err)
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return false, err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	// Write a temporary file, then link it into place: two processes starting
	// at once end up sharing whichever secret was linked first, and nobody
	// ever reads a half-written file.
	tmp, err := os.CreateTemp(c.DataDir, ".secret-*")
	if err != nil {
		return false, fmt.Errorf("create secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return c.EnsureSecret()
	} else if err != nil {
		return false, fmt.Errorf("create %s: %w", path, err)
	}
	c.Secret = []byte(secret)
	return true, nil
}
