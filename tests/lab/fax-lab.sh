#!/usr/bin/env bash
# A fax line on one machine, for the end-to-end tests: two iaxmodem soft modems dialling
# each other over IAX2 on 127.0.0.1 (no Asterisk), HylaFAX's faxq and hfaxd on SPOOL, a
# faxgetty on each modem (ttyIAX0 sends, ttyIAX1 answers). Runs inside a private mount
# namespace (unshare -m), so /etc/iaxmodem, /var/log/iaxmodem, /dev/log and the
# /dev/ttyIAX* links it needs are the namespace's own and the machine's files are never
# touched. What faxq, faxgetty and hfaxd log goes to SPOOL/lab/syslog, iaxmodem's to
# SPOOL/lab/log/.
# Usage: unshare -m --propagation private bash fax-lab.sh SPOOL HFAXD_PORT [no-answer]
# With no-answer, the far end's modem rings but nobody (no faxgetty) answers it.
set -euo pipefail
spool=$1
port=$2
far_end=${3:-answer}
here=$(cd "$(dirname "$0")" && pwd)
lab=$spool/lab
mkdir -p "$lab/iaxmodem" "$lab/dev" "$lab/log" "$lab/host-dev" "$spool/lock"
chown uucp:uucp "$spool/lock"

mkdir -p /etc/iaxmodem /var/log/iaxmodem
mount --bind "$lab/iaxmodem" /etc/iaxmodem
mount --bind "$lab/log" /var/log/iaxmodem

# A /dev of the namespace's own: the machine's plain device nodes bound in, ptys of its own
# (iaxmodem's), and a /dev/log that syslog-sink.py reads (the machine may have no syslog
# daemon, and HylaFAX logs nowhere else).
private_dev() {
  mount --rbind /dev "$lab/host-dev"
  mount -t tmpfs -o mode=755 lab-dev /dev
  local node
  for node in null zero full random urandom tty; do
    touch "/dev/$node"
    mount --bind "$lab/host-dev/$node" "/dev/$node"
  done
  mkdir /dev/pts /dev/shm
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 lab-pts /dev/pts
  ln -s pts/ptmx /dev/ptmx
  mount --rbind "$lab/host-dev/shm" /dev/shm
  ln -s /proc/self/fd /dev/fd
}

# Waits (bounded) until process PID has FILE open: faxq must read its FIFO before a
# faxgetty starts, or the faxgetty's one "modem ready" message is lost.
wait_until_open() {  # pid, file, what
  local _
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || { echo "fax-lab: $3 exited" >&2; exit 1; }
    for fd in /proc/"$1"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "$2" ]] && return 0
    done
    sleep 0.1
  done
  echo "fax-lab: $3 did not open $2 within 30 s" >&2
  exit 1
}

modem() {  # name, own IAX port, rings before answer
  cat > "/etc/iaxmodem/$1" <<CFG
device $lab/dev/$1
owner uucp:uucp
mode 660
port $2
refresh 0
server 127.0.0.1
peername $1
secret none
cidname dispatcher
cidnumber 0312340000
codec slinear
CFG
  # HylaFAX names a modem outside /dev by its path with / turned into _.
  cat > "$spool/etc/config.$(tr / _ <<< "$lab/dev/$1")" <<CFG
CountryCode: 81
AreaCode: 3
FAXNumber: +81.3.1234.0000
LongDistancePrefix: 0
InternationalPrefix: 010
DialStringRules: etc/dialrules
UUCPLockDir: $spool/lock
RecvFileMode: 0644
DeviceMode: 0600
RingsBeforeAnswer: $3
SpeakerVolume: off
LocalIdentifier: "dispatcher"
TagLineFont: etc/lutRS18.pcf
TagLineFormat: "From %%l|%c|Page %%P of %%T"
ModemType: Class1
Class1AdaptRecvCmd: AT+FAR=1
Class1TMConnectDelay: 400
ServerTracing: 0x00101
SessionTracing: 0x00001
JobReqNoCarrier: 2
JobReqBusy: 2
JobReqNoAnswer: 2
JobReqOther: 2
CFG
}
modem ttyIAX0 4570 0   # the sender never answers
modem ttyIAX1 4569 1   # the receiver answers on the first ring; IAX2 calls arrive on 4569
# faxq logs the modems' state changes (0x08000), its FIFO (0x04000) and its queue (0x00201).
echo "ServerTracing: 0x0CA01" >> "$spool/etc/config"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT TERM INT
private_dev
python3 "$here/syslog-sink.py" /dev/log "$lab/syslog" & pids+=($!)
for _ in $(seq 100); do [[ -S /dev/log ]] && break; sleep 0.1; done
[[ -S /dev/log ]] || { echo "fax-lab: the syslog sink did not start" >&2; exit 1; }
iaxmodem ttyIAX0 & pids+=($!)
iaxmodem ttyIAX1 & pids+=($!)
for _ in $(seq 100); do [[ -e $lab/dev/ttyIAX0 && -e $lab/dev/ttyIAX1 ]] && break; sleep 0.1; done
faxq -q "$spool" -D & pids+=($!)
wait_until_open "${pids[-1]}" "$spool/FIFO" faxq
hfaxd -q "$spool" -i "$port" -d & pids+=($!)
faxgetty -q "$spool" "$lab/dev/ttyIAX0" & pids+=($!)
if [[ $far_end == answer ]]; then faxgetty -q "$spool" "$lab/dev/ttyIAX1" & pids+=($!); fi
wait -n
