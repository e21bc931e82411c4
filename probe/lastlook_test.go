package probe

import (
	"context"
	"errors"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// A wait whose deadline's timer ran before the poller saw the answer (a
// loaded machine) ends with the answer already queued: the probe must take
// it, not call the silence a drop. A deadline already past when the wait
// starts is that race, made certain (Go then does not read at all).
var _ = Describe("a wait that ran out", func() {
	It("still takes an answer the kernel had already queued", func() {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unix.Close, pair[1])
		p := &dialer{fd: pair[0], ctx: context.Background()}
		DeferCleanup(p.Close)
		_, err = unix.Write(pair[1], []byte("reply"))
		Expect(err).NotTo(HaveOccurred())

		rc, err := p.socketFile().SyscallConn()
		Expect(err).NotTo(HaveOccurred())
		Expect(p.socketFile().SetReadDeadline(time.Now().Add(-time.Second))).To(Succeed())
		var n int
		try := func(fd int) bool {
			n, err = unix.Read(fd, make([]byte, 16))
			return !errors.Is(err, unix.EAGAIN)
		}
		waited := rc.Read(func(fd uintptr) bool { return try(int(fd)) })
		Expect(waited).To(MatchError(os.ErrDeadlineExceeded), "Go's wait alone never looked")
		Expect(p.lastLook(waited, try)).To(Succeed())
		Expect(n).To(Equal(5))
	})

	It("leaves a real silence a silence", func() {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unix.Close, pair[1])
		p := &dialer{fd: pair[0]}
		DeferCleanup(p.Close)
		try := func(fd int) bool {
			_, err := unix.Read(fd, make([]byte, 16))
			return !errors.Is(err, unix.EAGAIN)
		}
		Expect(p.lastLook(os.ErrDeadlineExceeded, try)).To(MatchError(os.ErrDeadlineExceeded))
	})
})
