#!/usr/bin/perl
# Writes a small GeoIP2-Country style database for tests:
#   make_mmdb.pl OUT.mmdb CIDR=CC [CIDR=CC ...]
# Each network maps to {country => {iso_code => CC}}; IPv4 networks are also reachable through
# their IPv4-mapped IPv6 forms, as in MaxMind's own databases.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

die "usage: make_mmdb.pl OUT.mmdb CIDR=CC...\n" if @ARGV < 2;
my $out = shift @ARGV;
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'GeoIP2-Country',
    languages                => ['en'],
    description              => { en => 'steerd test country database' },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,    # the tests use documentation ranges
    map_key_type_callback    => sub { { country => 'map', iso_code => 'utf8_string' }->{ $_[0] } },
);
for my $arg (@ARGV) {
    my ($net, $cc) = split /=/, $arg, 2;
    die "bad network spec: $arg\n" unless defined $cc && $cc =~ /^[A-Z]{2}$/;
    $tree->insert_network($net, { country => { iso_code => $cc } });
}
my $tmp = "$out.tmp";
open my $fh, '>:raw', $tmp or die "cannot write $tmp: $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write $tmp: $!\n";
rename $tmp, $out or die "cannot rename $tmp: $!\n";
