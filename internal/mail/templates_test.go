package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultTemplates(t *testing.T) {
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	withLink := map[Kind]time.Duration{
		KindVerifyEmail:        24 * time.Hour,
		KindResetPassword:      30 * time.Minute,
		KindConfirmEmailChange: time.Hour,
	}
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			data := Data{AppName: "Acme <ID>", Email: "carol@example.com", NewEmail: "carol.new@example.com"}
			if ttl, ok := withLink[k]; ok {
				data.Link = "https://app.example/path?token=T0k3n&x=<y>"
				data.ExpiresIn = ttl
			}
			subject, text, html, err := tpl.Render(k, data)
			require.NoError(t, err)
			assert.NotEmpty(t, subject)
			assert.NotContains(t, subject, "\n")
			assert.Contains(t, subject, "Acme <ID>", "text/template leaves the subject unescaped; Encode handles it")
			// Every mail says what to do when it was not you.
			assert.Regexp(t, `(?i)(did not|was not|wasn't|it was not)`, text)
			assert.Contains(t, text, "Acme <ID>")
			assert.NotContains(t, html, "Acme <ID>", "html/template escapes")
			assert.Contains(t, html, "Acme &lt;ID&gt;")
			assert.NotContains(t, text+html, "<no value>")
			if data.Link != "" {
				assert.Contains(t, text, data.Link)
				assert.Contains(t, text, humanDuration(data.ExpiresIn))
				assert.Contains(t, html, humanDuration(data.ExpiresIn))
				assert.Contains(t, html, `href="https://app.example/path?token=T0k3n&amp;x=%3cy%3e"`)
				assert.NotContains(t, html, "<y>")
			}
			if k == KindConfirmEmailChange || k == KindEmailChangedNotice || k == KindEmailChangeRequested {
				assert.Contains(t, text, data.NewEmail)
			}
		})
	}
}

func TestDefaultNoticesTakeAnOptionalLink(t *testing.T) {
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	for _, k := range []Kind{KindPasswordChangedNotice, KindSignupAttemptNotice, KindEmailChangeRequested} {
		_, text, html, err := tpl.Render(k, Data{Email: "carol@example.com", NewEmail: "n@example.com"})
		require.NoError(t, err)
		assert.NotContains(t, text, "http", k)
		assert.NotContains(t, html, "href", k)
		assert.Contains(t, text, "Lanyard", "AppName defaults to Lanyard")
		_, text, html, err = tpl.Render(k, Data{Email: "carol@example.com", NewEmail: "n@example.com", Link: "https://app.example/forgot"})
		require.NoError(t, err)
		assert.Contains(t, text, "https://app.example/forgot", k)
		assert.Contains(t, html, `href="https://app.example/forgot"`, k)
	}
}

func TestHTMLTemplateRefusesScriptLinks(t *testing.T) {
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	_, _, html, err := tpl.Render(KindVerifyEmail, Data{Email: "<script>alert(1)</script>@example.com", Link: "javascript:alert(1)"})
	require.NoError(t, err)
	// As text the link is harmless; as an href html/template neutralises it.
	assert.NotContains(t, html, `href="javascript:`)
	assert.Contains(t, html, `href="#ZgotmplZ"`)
	assert.NotContains(t, html, "<script>")
}

func TestRenderUnknownKind(t *testing.T) {
	tpl, err := LoadTemplates("")
	require.NoError(t, err)
	_, _, _, err = tpl.Render("nope", Data{})
	require.Error(t, err)
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	return dir
}

func TestTemplatesOverrideFromDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"verify_email.subject.txt": "Welcome to {{.AppName}}!\n",
		"verify_email.html":        `<p>Click <a href="{{.Link}}">here</a>, {{.Email}}</p>`,
		"reset_password.txt":       "Reset: {{.Link}} ({{.ExpiresInWords}})\n",
		".hidden":                  "ignored",
	})
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	tpl, err := LoadTemplates(dir)
	require.NoError(t, err)
	defaults, err := LoadTemplates("")
	require.NoError(t, err)

	data := Data{AppName: "Acme", Email: "a&b@example.com", Link: "https://app.example/verify-email?token=x", ExpiresIn: 90 * time.Minute}
	subject, text, html, err := tpl.Render(KindVerifyEmail, data)
	require.NoError(t, err)
	assert.Equal(t, "Welcome to Acme!", subject)
	assert.Equal(t, `<p>Click <a href="https://app.example/verify-email?token=x">here</a>, a&amp;b@example.com</p>`, html)
	_, defText, _, err := defaults.Render(KindVerifyEmail, data)
	require.NoError(t, err)
	assert.Equal(t, defText, text, "files not in dir keep the default")

	_, text, _, err = tpl.Render(KindResetPassword, data)
	require.NoError(t, err)
	assert.Equal(t, "Reset: https://app.example/verify-email?token=x (1 hour 30 minutes)\n", text)
}

func TestBadTemplateDirFailsAtLoad(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"parse error":           {"verify_email.txt": "{{.Link"},
		"html parse error":      {"reset_password.html": "<a href=\"{{.Link}}\">{{end}}</a>"},
		"unknown field":         {"verify_email.txt": "{{.Token}}"},
		"multi-line subject":    {"verify_email.subject.txt": "Hello\n{{.AppName}}"},
		"empty subject":         {"verify_email.subject.txt": "  \n"},
		"misnamed override":     {"verify-email.txt": "{{.Link}}"},
		"unknown kind":          {"welcome.html": "<p>hi</p>"},
		"bad suffix for kind":   {"verify_email.md": "hi"},
		"unknown function":      {"verify_email.txt": "{{shout .Link}}"},
		"template exec failure": {"verify_email.txt": "{{index .Email 99}}"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadTemplates(writeFiles(t, files))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mail templates")
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		_, err := LoadTemplates(filepath.Join(t.TempDir(), "nope"))
		require.Error(t, err)
	})
	t.Run("not a dir", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"f": "x"})
		_, err := LoadTemplates(filepath.Join(dir, "f"))
		require.Error(t, err)
	})
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:                  "24 hours",
		30 * time.Minute:                "30 minutes",
		time.Hour:                       "1 hour",
		time.Minute:                     "1 minute",
		90 * time.Minute:                "1 hour 30 minutes",
		72 * time.Hour:                  "3 days",
		49*time.Hour + 5*time.Minute:    "2 days 1 hour 5 minutes",
		10 * time.Second:                "less than a minute",
		29*time.Minute + 40*time.Second: "30 minutes",
	} {
		assert.Equal(t, want, humanDuration(d), d.String())
	}
	assert.True(t, strings.HasPrefix(Data{ExpiresIn: time.Hour}.ExpiresInWords(), "1 hour"))
}
