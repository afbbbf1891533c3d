package identity

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClientFingerprint(t *testing.T) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	fp := func(ip, ua string) []byte { return clientFingerprint(Client{IP: ip, UserAgent: ua}) }
	base := fp("192.0.2.10", ua)
	assert.Len(t, base, fingerprintLen)

	same := map[string]Client{
		"another address in the /24":    {IP: "192.0.2.250", UserAgent: ua},
		"the IPv4-mapped IPv6 spelling": {IP: "::ffff:192.0.2.10", UserAgent: ua},
	}
	for name, c := range same {
		assert.Equal(t, base, clientFingerprint(c), name)
	}
	differ := map[string]Client{
		"the next /24":            {IP: "192.0.3.10", UserAgent: ua},
		"another User-Agent":      {IP: "192.0.2.10", UserAgent: ua + " Edge"},
		"no User-Agent":           {IP: "192.0.2.10"},
		"parts shifted across":    {IP: "192.0.2.10" + ua},
		"an unparsable address":   {IP: "garbage", UserAgent: ua},
		"another unparsable one":  {IP: "garbage2", UserAgent: ua},
		"an IPv6 client, same UA": {IP: "2001:db8::1", UserAgent: ua},
	}
	seen := map[string]string{string(base): "base"}
	for name, c := range differ {
		got := string(clientFingerprint(c))
		if prev, dup := seen[got]; dup {
			t.Errorf("%s has the same fingerprint as %s", name, prev)
		}
		seen[got] = name
	}

	v6 := fp("2001:db8:1:2::1", ua)
	assert.Equal(t, v6, fp("2001:db8:1:2:aaaa:bbbb:cccc:dddd", ua), "privacy addresses in one /64 are one client")
	assert.Equal(t, v6, fp("2001:db8:1:2::1%eth0", ua), "the zone is not part of the network")
	assert.NotEqual(t, v6, fp("2001:db8:1:3::1", ua), "the next /64 is another client")
}
