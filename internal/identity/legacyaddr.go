package identity

import (
	"context"
	"errors"
	"net/mail"
	"slices"
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

// otherSpellings are the forms other than normalised that an account with
// this address may be stored under: the A-label domain form and the
// previous rules' form of what the user typed, without repeats.
func otherSpellings(raw, normalised string) []string {
	var out []string
	add := func(s string) {
		if s != "" && s != normalised && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if normalised != "" {
		if ascii, err := emailaddr.ASCIIDomain(normalised); err == nil {
			add(strings.ToLower(ascii))
		}
	}
	add(legacyAddress(raw))
	return out
}

// findAccount looks raw up with find (the store or a transaction): as
// normalised first, which finds every account made under the current rules
// in one lookup, and only on a miss under its other spellings; ErrNotFound
// when no account has any of them.
func findAccount(ctx context.Context, find func(context.Context, string) (User, string, error), raw, normalised string) (User, string, error) {
	if normalised != "" {
		user, hash, err := find(ctx, normalised)
		if !errors.Is(err, ErrNotFound) {
			return user, hash, err
		}
	}
	for _, spelling := range otherSpellings(raw, normalised) {
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
	for _, spelling := range otherSpellings("", email) {
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
