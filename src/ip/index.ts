/** Pure address helpers: IPv4/IPv6 addresses and networks, MACs, and family-generic CIDR helpers. */
export * from './ip4.js';
export * from './ip6.js';
export * from './mac.js';
export * from './cidr.js';
