package identity_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-id/lanyard/internal/identity"
	"github.com/lanyard-id/lanyard/internal/password"
	"github.com/lanyard-id/lanyard/internal/testdb"
	"github.com/lanyard-id/lanyard/internal/tokentest"
)

// weakPasswords are refused at sign-up of margaret.hamilton@example.com and
// at her password change, each for the reason given.
var weakPasswords = []struct{ password, reason string }{
	{"               ", string(password.Repetitive)},
	{"aaaaaaaaaaaaaaa", string(password.Repetitive)},
	{"passwordpassword", string(password.Repetitive)},
	{"123456789012345", string(password.Repetitive)},
	{"my Lanyard account key", string(password.ContainsService)},
	{"Margaret and the Apollo code", string(password.ContainsEmail)},
	{"ask hamilton about apollo", string(password.ContainsEmail)},
	{"1Q2W3E4R5T6Y7U8I", string(password.Common)},
}

// validationFields returns the fields of a validation_failed error.
func validationFields(t *testing.T, err error) []identity.FieldError {
	t.Helper()
	var e *identity.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, identity.CodeValidation, e.Code)
	return e.Fields
}

func TestPasswordPolicy(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			st := testdb.Open(t, d)
			svc := newService(t, st, st, tokentest.NewClock(identity.Now()).Now, newSecret())
			ctx := context.Background()
			client := identity.Client{UserAgent: "test/1.0", IP: "192.0.2.1"}
			const email = "Margaret.Hamilton@example.com"

			for _, w := range weakPasswords {
				_, err := svc.SignUp(ctx, identity.SignUpInput{Email: email, Password: w.password}, client)
				assert.Equal(t, []identity.FieldError{{Field: "password", Message: w.reason}}, validationFields(t, err), "%q", w.password)
				assert.NotContains(t, err.Error(), w.password)
			}
			_, err := svc.SignUp(ctx, identity.SignUpInput{Email: "not an email", Password: "passwordpassword"}, client)
			assert.Equal(t, []identity.FieldError{
				{Field: "email", Message: "must be a valid email address of at most 254 characters"},
				{Field: "password", Message: string(password.Repetitive)},
			}, validationFields(t, err), "every field's reason at once")

			// Another user may use what is personal to Margaret.
			_, err = svc.SignUp(ctx, identity.SignUpInput{Email: "ada@example.com", Password: "Margaret and the Apollo code"}, client)
			require.NoError(t, err)

			tk, err := svc.SignUp(ctx, identity.SignUpInput{Email: email, Password: pw}, client)
			require.NoError(t, err)
			claims, err := svc.AuthenticateSession(ctx, tk.AccessToken)
			require.NoError(t, err)
			for _, w := range weakPasswords {
				_, err := svc.ChangePassword(ctx, claims, client, pw, w.password)
				assert.Equal(t, []identity.FieldError{{Field: "new_password", Message: w.reason}}, validationFields(t, err), "%q", w.password)
			}
			_, err = svc.ChangePassword(ctx, claims, client, pw, "short")
			assert.Equal(t, []identity.FieldError{{Field: "new_password", Message: "must be 15 to 1024 characters long"}}, validationFields(t, err))
			_, err = svc.ChangePassword(ctx, claims, client, pw, "a less guessable phrase for 2026")
			require.NoError(t, err)
			_, err = svc.LogIn(ctx, email, "a less guessable phrase for 2026", client)
			require.NoError(t, err)
		})
	}
}
