#!/usr/bin/perl
# Helper for the expectation cases: opens an FTP control connection on 127.0.0.1:21 from a
# fixed client port and sends a PORT command, so that the kernel's ftp helper (assigned by an
# nftables "ct helper" rule) creates an expectation. The sockets are kept open by a child
# process (killed when the test namespace is deleted); the parent exits once PORT was sent.
# usage: ftp-expect.pl CLIENT_PORT DATA_PORT
use strict;
use warnings;
use IO::Socket::INET;

my ($cport, $dport) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 21, Listen => 5,
                                ReuseAddr => 1) or die "listen: $!";
my $cli = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => 21,
                                LocalAddr => "127.0.0.1", LocalPort => $cport) or die "connect: $!";
my $acc = $srv->accept or die "accept: $!";
$cli->autoflush(1);
# the helper only parses a command that follows a newline it has seen
print $cli "NOOP\r\n";
select(undef, undef, undef, 0.05);
my $hi = int($dport / 256);
my $lo = $dport % 256;
print $cli "PORT 127,0,0,1,$hi,$lo\r\n";
select(undef, undef, undef, 0.05);
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    open(STDIN, "<", "/dev/null");
    open(STDOUT, ">", "/dev/null");
    open(STDERR, ">", "/dev/null");
    sleep 3600;
    exit 0;
}
exit 0;
