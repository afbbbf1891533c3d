package identity

import (
	"context"
	"errors"
	"net/mail"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/lanyard-id/lanyard/internal/emailaddr"
)

// Accounts created before the address rules of internal/emailaddr keep the
// address as it was stored then: trimmed, NFC-normalised and lower-cased,
// with the domain as typed (an A-label, say). Migration 00007 reports such
// addresses but does not rewrite them, so every lookup by address also
// tries those spellings: their owners keep signing in and resetting, and
// nobody can register the same mailbox again under its new spelling.

// legacyAddress is how the previous rules stored raw; "" when raw was not
// an address under them either.
func legacyAddress(raw string) string {
	email := norm.NFC.String(strings.TrimSpace(raw))
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return ""
	}
	return strings.ToLower(email)
}

// addressSpellings are the stored forms an account with this address may
// have: the normalised one first, then the A-label domain form and the
// previous rules' form of what the user typed, without repeats.
func addressSpellings(raw, normalised string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	add(normalised)
	if normalised != "" {
		if ascii, err := emailaddr.ASCIIDomain(normalised); err == nil {
			add(strings.ToLower(ascii))
		}
	}
	add(legacyAddress(raw))
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// findAccount looks raw up under each of its spellings with find (the store
// or a transaction); ErrNotFound when no account has any of them.
func findAccount(ctx context.Context, find func(context.Context, string) (User, string, error), raw, normalised string) (User, string, error) {
	for _, spelling := range addressSpellings(raw, normalised) {
		user, hash, err := find(ctx, spelling)
		if !errors.Is(err, ErrNotFound) {
			return user, hash, err
		}
	}
	return User{}, "", ErrNotFound
}

// aliasTaken reports ErrEmailTaken when an account is stored under another
// spelling of the normalised address email (its A-label domain form), which
// the unique index on the stored spelling cannot see.
func aliasTaken(ctx context.Context, find func(context.Context, string) (User, string, error), email string) error {
	for _, spelling := range addressSpellings("", email)[1:] {
		_, _, err := find(ctx, spelling)
		switch {
		case err == nil:
			return ErrEmailTaken
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	return nil
}
