#!/usr/bin/env bash
# A fax line on one machine, for the end-to-end test: two iaxmodem soft modems dialling
# each other over IAX2 on 127.0.0.1 (no Asterisk), HylaFAX's faxq and hfaxd on SPOOL, a
# faxgetty on each modem (ttyIAX0 sends, ttyIAX1 answers). Runs inside a private mount
# namespace (unshare -m), so /etc/iaxmodem and the /dev/ttyIAX* links it needs are the
# namespace's own and the machine's files are never touched.
# Usage: unshare -m --propagation private bash fax-lab.sh SPOOL HFAXD_PORT
set -euo pipefail
spool=$1
port=$2
lab=$spool/lab
mkdir -p "$lab/iaxmodem" "$lab/dev" "$spool/lock"
chown uucp:uucp "$spool/lock"

mkdir -p /etc/iaxmodem
mount --bind "$lab/iaxmodem" /etc/iaxmodem

modem() {  # name, own IAX port
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
CFG
}
modem ttyIAX0 4570 0   # the sender never answers
modem ttyIAX1 4569 1   # the receiver answers on the first ring; IAX2 calls arrive on 4569

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT TERM INT
iaxmodem ttyIAX0 & pids+=($!)
iaxmodem ttyIAX1 & pids+=($!)
for _ in $(seq 50); do [[ -e $lab/dev/ttyIAX0 && -e $lab/dev/ttyIAX1 ]] && break; sleep 0.1; done
faxq -q "$spool" -D & pids+=($!)
hfaxd -q "$spool" -i "$port" -d & pids+=($!)
faxgetty -q "$spool" "$lab/dev/ttyIAX0" & pids+=($!)
faxgetty -q "$spool" "$lab/dev/ttyIAX1" & pids+=($!)
wait -n
