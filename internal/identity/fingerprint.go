package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// fingerprintLen is how much of the SHA-256 is kept: 128 bits cannot be
// matched by chance, and the column stays small on the hot path.
const fingerprintLen = 16

// clientFingerprint identifies the client presenting a refresh token, for
// binding the grace window to it: its network (IPv4 /24, IPv6 /64, so an
// address that moves within one network, as with IPv6 privacy addresses or
// carrier NAT pools, stays the same client) and its User-Agent. Two tabs of
// one browser share it; a thief replaying a copied token from elsewhere does
// not. It is a hash because it is only ever compared; the session row keeps
// the readable IP and User-Agent of its creation separately.
func clientFingerprint(c Client) []byte {
	network := c.IP
	if addr, err := netip.ParseAddr(c.IP); err == nil {
		addr = addr.Unmap().WithZone("")
		bits := 64
		if addr.Is4() {
			bits = 24
		}
		prefix, _ := addr.Prefix(bits) // cannot fail: bits fits both families
		network = prefix.String()
	}
	// Length-prefixed parts, so no network and User-Agent pair reads as another.
	var b []byte
	for _, part := range []string{"lanyard refresh client v1", network, c.UserAgent} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(part)))
		b = append(b, part...)
	}
	sum := sha256.Sum256(b)
	return sum[:fingerprintLen]
}
