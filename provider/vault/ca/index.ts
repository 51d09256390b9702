/** The vault's certificate authority and its X.509/DER encoders. */
export * from './certificate-authority';
export { encodeCertificate, toPem, keyIdentifier, ipAddressBytes, type CertificateTemplate, type DistinguishedName, type KeyUsage, type ExtendedKeyUsage } from './x509';
