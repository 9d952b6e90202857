// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @dev GS1 company prefixes and the brands they belong to. A brand may only register GTINs under its own prefixes.
 */
interface ICompanyPrefixRegistry {
    /// @dev `prefix` is not 4 to 12 decimal digits.
    error InvalidCompanyPrefix(string prefix);
    /// @dev `prefix`, or a prefix nested with it, already belongs to `owner`.
    error CompanyPrefixTaken(string prefix, address owner);
    /// @dev `prefix` is assigned to no one.
    error CompanyPrefixNotAssigned(string prefix);
    /// @dev A prefix cannot be assigned to the zero address.
    error InvalidBrand(address brand);
    /// @dev `gtin` is not 14 decimal digits with a valid GS1 check digit.
    error InvalidGtin(string gtin);
    /// @dev `gtin` is not under a company prefix of `account`.
    error GtinNotOwned(string gtin, address account);

    /// @dev `prefix` was assigned to `brand`.
    event CompanyPrefixAssigned(string prefix, address indexed brand);
    /// @dev `prefix` was taken back from `brand`.
    event CompanyPrefixRevoked(string prefix, address indexed brand);

    function assignPrefix(string calldata prefix, address brand) external;

    function revokePrefix(string calldata prefix) external;

    function prefixOwner(string calldata prefix) external view returns (address);

    function gtinOwner(string calldata gtin) external view returns (address);

    function checkGtinOwner(string calldata gtin, address account) external view;
}
