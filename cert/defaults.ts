// The numbers and markers that define masque-vpn's certificates, apart from the code that signs
// them, so the CLI can show them in --help without loading the ASN.1 machinery.

export const DEFAULT_CA_NAME = 'masque-vpn CA';
export const DEFAULT_CA_DAYS = 3650;

/** Default lifetimes in days by certificate kind. */
export const DEFAULT_DAYS = { server: 90, client: 365, admin: 365 } as const;

/** OU of administrator certificates: what makes a clientAuth certificate an admin one. */
export const ADMIN_OU = 'masque-admin';
/** OU of data-plane server certificates. */
export const SERVER_OU = 'masque-server';

// Issued certificates start a little in the past so a peer whose clock lags still accepts them.
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
