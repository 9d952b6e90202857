// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {RoleGated} from "./access/RoleGated.sol";
import {ICompanyPrefixRegistry} from "./interfaces/ICompanyPrefixRegistry.sol";

/**
 * @title CompanyPrefixRegistry
 * @notice The admin assigns GS1 company prefixes to brands; a GTIN belongs to the brand that holds the prefix it
 * starts with (after the GTIN-14 indicator digit). Nested prefixes are refused, so no GTIN has two owners and no one
 * can claim, or front-run, another brand's keys.
 */
contract CompanyPrefixRegistry is RoleGated, ICompanyPrefixRegistry {
    uint256 private constant _MIN_PREFIX_LENGTH = 4;
    uint256 private constant _MAX_PREFIX_LENGTH = 12;
    bytes32 private constant _DEFAULT_ADMIN_ROLE = 0x00;

    mapping(bytes32 prefixHash => address brand) private _owners;
    /// @dev Number of assigned prefixes that extend a given prefix: an assignment there would nest.
    mapping(bytes32 prefixHash => uint256 count) private _extensions;

    constructor(IAccessControl access_) RoleGated(access_) {}

    /**
     * @notice Assigns the GS1 company prefix `prefix` to `brand`.
     *
     * Requirements:
     * - the caller holds `DEFAULT_ADMIN_ROLE`;
     * - `brand` is not the zero address (an assignment to it could never be revoked, yet would block every
     *   prefix nested with `prefix` for good);
     * - `prefix` is 4 to 12 decimal digits;
     * - neither `prefix`, nor a shorter prefix of it, nor a longer one extending it is assigned.
     *
     * Emits a {CompanyPrefixAssigned} event.
     */
    function assignPrefix(string calldata prefix, address brand) external onlyRole(_DEFAULT_ADMIN_ROLE) {
        if (brand == address(0)) revert InvalidBrand(brand);
        bytes calldata digits = bytes(prefix);
        if (digits.length < _MIN_PREFIX_LENGTH || digits.length > _MAX_PREFIX_LENGTH || !_allDigits(digits)) {
            revert InvalidCompanyPrefix(prefix);
        }
        bytes32 key = keccak256(digits);
        if (_owners[key] != address(0)) revert CompanyPrefixTaken(prefix, _owners[key]);
        if (_extensions[key] != 0) revert CompanyPrefixTaken(prefix, address(0));
        for (uint256 len = _MIN_PREFIX_LENGTH; len < digits.length; ++len) {
            bytes32 shorter = keccak256(digits[:len]);
            address holder = _owners[shorter];
            if (holder != address(0)) revert CompanyPrefixTaken(prefix, holder);
            ++_extensions[shorter];
        }
        _owners[key] = brand;
        emit CompanyPrefixAssigned(prefix, brand);
    }

    /**
     * @notice Takes `prefix` back from its brand. Lots and items already registered under it stay registered.
     *
     * Requirements:
     * - the caller holds `DEFAULT_ADMIN_ROLE`;
     * - `prefix` is assigned.
     *
     * Emits a {CompanyPrefixRevoked} event.
     */
    function revokePrefix(string calldata prefix) external onlyRole(_DEFAULT_ADMIN_ROLE) {
        bytes calldata digits = bytes(prefix);
        bytes32 key = keccak256(digits);
        address brand = _owners[key];
        if (brand == address(0)) revert CompanyPrefixNotAssigned(prefix);
        delete _owners[key];
        for (uint256 len = _MIN_PREFIX_LENGTH; len < digits.length; ++len) {
            --_extensions[keccak256(digits[:len])];
        }
        emit CompanyPrefixRevoked(prefix, brand);
    }

    /// @notice The brand holding `prefix`, or the zero address.
    function prefixOwner(string calldata prefix) external view returns (address) {
        return _owners[keccak256(bytes(prefix))];
    }

    /**
     * @notice The brand whose company prefix `gtin` starts with, or the zero address.
     *
     * Requirements:
     * - `gtin` is a GTIN-14: 14 digits with a valid GS1 check digit (shorter GTINs are left-padded with zeros).
     */
    function gtinOwner(string calldata gtin) public view returns (address) {
        bytes calldata digits = bytes(gtin);
        if (digits.length != 14 || !_allDigits(digits) || !_validCheckDigit(digits)) revert InvalidGtin(gtin);
        // The indicator digit comes first; the company prefix starts at position 1.
        for (uint256 len = _MIN_PREFIX_LENGTH; len <= _MAX_PREFIX_LENGTH; ++len) {
            address holder = _owners[keccak256(digits[1:1 + len])];
            if (holder != address(0)) return holder;
        }
        return address(0);
    }

    /**
     * @notice Reverts unless `gtin` lies under a company prefix of `account`.
     *
     * Requirements:
     * - `gtin` is a valid GTIN-14 held by `account`.
     */
    function checkGtinOwner(string calldata gtin, address account) external view {
        if (gtinOwner(gtin) != account) revert GtinNotOwned(gtin, account);
    }

    function _allDigits(bytes calldata s) private pure returns (bool) {
        for (uint256 i = 0; i < s.length; ++i) {
            if (s[i] < "0" || s[i] > "9") return false;
        }
        return true;
    }

    /// @dev GS1 General Specifications 7.9.1: weights 3,1,3,... from the right, excluding the check digit.
    function _validCheckDigit(bytes calldata digits) private pure returns (bool) {
        uint256 sum = 0;
        for (uint256 i = 0; i < 13; ++i) {
            uint256 d = uint8(digits[i]) - 48;
            sum += (i % 2 == 0) ? d * 3 : d;
        }
        return (10 - (sum % 10)) % 10 == uint8(digits[13]) - 48;
    }
}
