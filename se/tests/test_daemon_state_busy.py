"""A second keylink-se on a state directory that another process holds: it says who
(another keylink-se and its pid, or the other program's name and pid), exits 1 without
opening its socket, and leaves the first daemon serving; once the state is free the
same command starts."""
import fcntl
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_wire as w  # noqa: E402

BIN = os.path.join(os.environ.get("KL_BIN_DIR", "."), "keylink-se")


def second(state, sock):
    p = subprocess.run([BIN, "--state", state, "--socket", sock], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 1, "second daemon exit %d: %s" % (p.returncode, p.stderr)
    assert not os.path.exists(sock), "second daemon created its socket"
    assert "KL_E_BUSY" not in p.stderr and "another host" not in p.stderr, p.stderr
    return p.stderr


def main():
    d = w.Daemon()
    try:
        d.start()
        s = d.connect()  # a host on the first daemon: still the daemon is the holder
        st, _ = w.call(s, 0xF2)
        assert st == 0
        other = os.path.join(d.tmp, "b.sock")
        err = second(d.state, other)
        want = "keylink-se: %s is already served by another keylink-se (pid %d); stop it " \
               "or use another --state" % (d.state, d.proc.pid)
        assert want in err, "got %r" % err
        assert w.call(s, 0xF2)[0] == 0, "first daemon disturbed"
        s.close()
        assert d.alive()
        assert d.stop() == 0
        # another program holding the lock is named as that program
        fd = os.open(d.state, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        err = second(d.state, other)
        comm = open("/proc/%d/comm" % os.getpid()).read().strip()
        want = "%s is in use by %s (pid %d); stop it or use another --state" % (
            d.state, comm, os.getpid())
        assert want in err, "got %r" % err
        os.close(fd)
        # free again: the same state starts
        p = subprocess.Popen([BIN, "--state", d.state, "--socket", other],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(other):
                    break
                time.sleep(0.05)
            assert os.path.exists(other), "daemon did not start on the freed state"
        finally:
            p.terminate()
            p.wait(timeout=10)
    finally:
        d.cleanup()
    print("state busy ok")


if __name__ == "__main__":
    main()
