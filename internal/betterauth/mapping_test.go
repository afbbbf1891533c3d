package betterauth

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ptr(s string) *string { return &s }

// validHash has Better-Auth's form: 32 hex digits, ':', 128 hex digits.
var validHash = strings.Repeat("ab", 16) + ":" + strings.Repeat("0f", 64)

func credentialUser(id string) sourceUser {
	return sourceUser{ID: id, Name: []byte("Ada"), Email: "Ada@Example.com", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC),
		Accounts: []sourceAccount{{Provider: "credential", Password: ptr(validHash)}}}
}

func TestMapUser(t *testing.T) {
	m := mapUser(credentialUser("u1"))
	require.NotNil(t, m.user)
	assert.Equal(t, "ada@example.com", m.user.Email, "normalised as Lanyard's sign-up does")
	assert.Equal(t, "$ba-scrypt$"+validHash, m.user.PasswordHash)
	assert.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), m.user.CreatedAt, "microseconds, as the database keeps")
	assert.Equal(t, "Ada", *m.user.Name)

	for name, c := range map[string]struct {
		change func(*sourceUser)
		skip   string
		fail   string
		warn   string
	}{
		"long id":         {change: func(u *sourceUser) { u.ID = strings.Repeat("x", 65) }, skip: "id is not 1 to 64"},
		"control in id":   {change: func(u *sourceUser) { u.ID = "a\nb" }, skip: "id is not 1 to 64"},
		"no accounts":     {change: func(u *sourceUser) { u.Accounts = nil }, skip: "no account row"},
		"oauth only":      {change: func(u *sourceUser) { u.Accounts = []sourceAccount{{Provider: "google"}, {Provider: "github"}} }, skip: `providers found: "google", "github"`},
		"two credentials": {change: func(u *sourceUser) { u.Accounts = append(u.Accounts, u.Accounts[0]) }, fail: "2 credential accounts"},
		"null password":   {change: func(u *sourceUser) { u.Accounts[0].Password = nil }, fail: "no password hash"},
		"corrupt hash":    {change: func(u *sourceUser) { u.Accounts[0].Password = ptr("hunter2") }, fail: "corrupt password hash"},
		"bad email":       {change: func(u *sourceUser) { u.Email = "not an address" }, fail: "email address refused"},
		"non-UTF-8 name":  {change: func(u *sourceUser) { u.Name = []byte{'A', 0xff} }, warn: "not valid UTF-8"},
		"invisible name":  {change: func(u *sourceUser) { u.Name = []byte("A\u202eB") }, warn: "name rules"},
		"unknown role":    {change: func(u *sourceUser) { u.Profiles = []sourceProfile{{ptr("advanced"), ptr("Wizard")}} }, warn: `developer_role "Wizard"`},
		"two profiles":    {change: func(u *sourceUser) { u.Profiles = make([]sourceProfile, 2) }, warn: "2 user_profile rows"},
	} {
		t.Run(name, func(t *testing.T) {
			u := credentialUser("u1")
			c.change(&u)
			m := mapUser(u)
			// Contains with an empty want passes whatever: an empty want
			// means the field must be empty.
			for _, pair := range [][2]string{{m.skip, c.skip}, {m.fail, c.fail}} {
				if pair[1] == "" {
					assert.Empty(t, pair[0])
				} else {
					assert.Contains(t, pair[0], pair[1])
				}
			}
			if c.skip != "" || c.fail != "" {
				assert.Nil(t, m.user)
				assert.NotContains(t, m.fail, "hunter2", "a failure never quotes the hash")
				return
			}
			require.NotNil(t, m.user)
			require.Len(t, m.warnings, 1)
			assert.Contains(t, m.warnings[0], c.warn)
		})
	}
}

func TestMapProfile(t *testing.T) {
	for _, c := range []struct {
		python, role *string
		want         *Profile
	}{
		{ptr("Intermediate"), ptr("software-engineer"), &Profile{"intermediate", "software_engineer"}},
		{ptr(" NONE "), ptr("Data Scientist"), &Profile{"none", "data_scientist"}},
		{ptr("advanced"), ptr("ML-Engineer"), &Profile{"advanced", "ml_engineer"}},
		{ptr("beginner"), nil, &Profile{PythonProficiency: "beginner"}},
		{nil, ptr(""), nil},
	} {
		p, warning := mapProfile([]sourceProfile{{c.python, c.role}})
		assert.Empty(t, warning)
		assert.Equal(t, c.want, p)
	}
	p, warning := mapProfile([]sourceProfile{{ptr("expert"), ptr("student")}})
	assert.Nil(t, p, "never guessed")
	assert.Contains(t, warning, `python_proficiency "expert" is not one of none, beginner, intermediate, advanced`)
	assert.True(t, (&Profile{"none", "other"}).Complete())
	assert.False(t, (&Profile{PythonProficiency: "none"}).Complete())
}
