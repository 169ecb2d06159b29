package winrmtest

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // NTLMv2 is defined on HMAC-MD5
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 NTLM's password hash is MD4: compatibility, not security
	"golang.org/x/crypto/md4" //nolint:gosec,staticcheck // NTLM's password hash is MD4
)

// The endpoint's side of NTLMv2 over HTTP (MS-NLMP, carried in the
// "Negotiate" or "NTLM" Authorization scheme): answer a NEGOTIATE message
// with a CHALLENGE, then check the AUTHENTICATE message's NTLMv2 proof
// against the configured password. Signing and sealing are not offered,
// so messages travel as plain SOAP like over HTTPS.

const (
	ntlmNegotiate    = 1
	ntlmChallenge    = 2
	ntlmAuthenticate = 3

	// Flags offered in the CHALLENGE: Unicode, request target, NTLM,
	// always sign, target type domain, extended session security, target
	// info, 128- and 56-bit. Neither LM_KEY nor KEY_EXCH: NTLMv2 only.
	ntlmChallengeFlags = 0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 |
		0x00010000 | 0x00080000 | 0x00800000 | 0x20000000 | 0x80000000

	ntlmDomain   = "PACKFLOW"
	ntlmComputer = "WINHOST"

	// ntlmPendingMax bounds the challenges waiting for their answer; a
	// client that never answers cannot grow the list.
	ntlmPendingMax = 64
	ntlmPendingTTL = time.Minute
)

var ntlmSignature = []byte("NTLMSSP\x00")

// ntlmVerifier keeps the challenges sent and not yet answered. A client may
// answer on another connection than the one that got the challenge, so
// every pending challenge is tried.
type ntlmVerifier struct {
	mu      sync.Mutex
	pending []ntlmPending
}

type ntlmPending struct {
	challenge [8]byte
	sent      time.Time
}

// scheme returns the authentication scheme and the decoded NTLM message
// of an Authorization header, or ok false.
func ntlmHeader(h string) (scheme string, msg []byte, ok bool) {
	scheme, data, found := strings.Cut(h, " ")
	if !found || (!strings.EqualFold(scheme, "Negotiate") && !strings.EqualFold(scheme, "NTLM")) {
		return "", nil, false
	}
	msg, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
	if err != nil || len(msg) < 12 || string(msg[:8]) != string(ntlmSignature) {
		return "", nil, false
	}
	return scheme, msg, true
}

func ntlmType(msg []byte) uint32 { return binary.LittleEndian.Uint32(msg[8:12]) }

// challenge builds a CHALLENGE message and remembers its server challenge.
func (v *ntlmVerifier) challenge() []byte {
	var c [8]byte
	_, _ = rand.Read(c[:])
	now := time.Now()
	v.mu.Lock()
	keep := v.pending[:0]
	for _, p := range v.pending {
		if now.Sub(p.sent) < ntlmPendingTTL {
			keep = append(keep, p)
		}
	}
	v.pending = append(keep, ntlmPending{challenge: c, sent: now})
	if len(v.pending) > ntlmPendingMax {
		v.pending = v.pending[len(v.pending)-ntlmPendingMax:]
	}
	v.mu.Unlock()

	target := utf16le(ntlmDomain)
	var info []byte
	info = appendAV(info, 2, utf16le(ntlmDomain))   // MsvAvNbDomainName
	info = appendAV(info, 1, utf16le(ntlmComputer)) // MsvAvNbComputerName
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(now.UnixNano()/100)+116444736000000000)
	info = appendAV(info, 7, ts) // MsvAvTimestamp
	info = appendAV(info, 0, nil)

	const fixed = 48
	msg := make([]byte, fixed, fixed+len(target)+len(info))
	copy(msg, ntlmSignature)
	binary.LittleEndian.PutUint32(msg[8:], ntlmChallenge)
	putVarField(msg[12:], len(target), fixed)
	binary.LittleEndian.PutUint32(msg[20:], ntlmChallengeFlags)
	copy(msg[24:32], c[:])
	putVarField(msg[40:], len(info), fixed+len(target))
	msg = append(msg, target...)
	return append(msg, info...)
}

// verify checks an AUTHENTICATE message for user and password against the
// pending challenges, consuming the one it answers.
func (v *ntlmVerifier) verify(msg []byte, user, password string) bool {
	nt, ok1 := varField(msg, 20)
	domain, ok2 := varField(msg, 28)
	name, ok3 := varField(msg, 36)
	if !ok1 || !ok2 || !ok3 || len(nt) < 16+28 {
		return false
	}
	gotUser, err := fromUTF16le(name)
	if err != nil || !strings.EqualFold(gotUser, user) {
		return false
	}
	gotDomain, err := fromUTF16le(domain)
	if err != nil {
		return false
	}
	h := md4.New() //nolint:gosec // NTLM's password hash is MD4
	h.Write(utf16le(password))
	key := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(gotUser)+gotDomain))
	proof, blob := nt[:16], nt[16:]

	v.mu.Lock()
	defer v.mu.Unlock()
	for i, p := range v.pending {
		if hmac.Equal(proof, hmacMD5(key, p.challenge[:], blob)) {
			v.pending = append(v.pending[:i], v.pending[i+1:]...)
			return true
		}
	}
	return false
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

func appendAV(b []byte, id uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, id)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func putVarField(b []byte, length, offset int) {
	binary.LittleEndian.PutUint16(b[0:], uint16(length))
	binary.LittleEndian.PutUint16(b[2:], uint16(length))
	binary.LittleEndian.PutUint32(b[4:], uint32(offset))
}

// varField returns the bytes a length/offset field at off points to.
func varField(msg []byte, off int) ([]byte, bool) {
	if len(msg) < off+8 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(msg[off:]))
	start := int(binary.LittleEndian.Uint32(msg[off+4:]))
	if start < 0 || start > len(msg) || n > len(msg)-start {
		return nil, false
	}
	return msg[start : start+n], true
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

func fromUTF16le(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", errors.New("odd UTF-16 length")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}
