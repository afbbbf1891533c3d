package identity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
)

// failingAudit is a real store whose transactions cannot append an audit
// event: the event is the last write of each change, so a change that
// committed without its event would show here.
type failingAudit struct{ identity.Store }

type failingAuditTx struct{ identity.Tx }

var errAuditDown = errors.New("audit append refused")

func (failingAuditTx) AppendAudit(context.Context, identity.AuditEvent) error { return errAuditDown }

func (f failingAudit) Atomically(ctx context.Context, fn func(identity.Tx) error) error {
	return f.Store.Atomically(ctx, func(tx identity.Tx) error { return fn(failingAuditTx{tx}) })
}

// TestChangeWithoutItsEvent: when the event of a change cannot be written,
// the change does not happen either (issue 13: writing an event is part of
// the same transaction as the change it records).
func TestChangeWithoutItsEvent(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			st := testdb.Open(t, d)
			clk := tokentest.NewClock(identity.Now())
			secret := newSecret()
			ctx := context.Background()
			client := identity.Client{UserAgent: "test/1.0", IP: "192.0.2.1"}
			signed, err := newService(t, st, st, clk.Now, secret).SignUp(ctx, identity.SignUpInput{Email: "atomic@example.com", Password: pw}, client)
			require.NoError(t, err)
			claims, err := newService(t, st, st, clk.Now, secret).Authenticate(signed.AccessToken)
			require.NoError(t, err)

			broken := newService(t, failingAudit{st}, st, clk.Now, secret)
			admin := identity.Admin{Via: "test"}
			assert.ErrorIs(t, broken.AdminDisableUser(ctx, admin, signed.User.ID), errAuditDown)
			u, err := st.UserByID(ctx, signed.User.ID)
			require.NoError(t, err)
			assert.Nil(t, u.DisabledAt, "not disabled without its user_disabled event")

			_, err = broken.ChangePassword(ctx, claims, client, pw, "another correct horse battery")
			assert.ErrorIs(t, err, errAuditDown)
			_, err = newService(t, st, st, clk.Now, secret).LogIn(ctx, "atomic@example.com", pw, client)
			assert.NoError(t, err, "the old password still works: no password_changed, no change")

			_, err = broken.SignUp(ctx, identity.SignUpInput{Email: "never@example.com", Password: pw}, client)
			assert.ErrorIs(t, err, errAuditDown)
			_, _, err = st.FindCredentials(ctx, "never@example.com")
			assert.ErrorIs(t, err, identity.ErrNotFound, "no account without its signup event")
		})
	}
}
