// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @dev Role identifiers shared by every circular-ledger contract. `DEFAULT_ADMIN_ROLE` (0x00) is OpenZeppelin's.
 */
library Roles {
    /// @dev Registers material lots and items under its own GS1 company prefixes.
    bytes32 internal constant BRAND_ROLE = keccak256("BRAND_ROLE");
    /// @dev Collects, recycles and disposes of items; registers recovered-material lots.
    bytes32 internal constant RECYCLER_ROLE = keccak256("RECYCLER_ROLE");
    /// @dev Sells, resells and takes back items.
    bytes32 internal constant RETAILER_ROLE = keccak256("RETAILER_ROLE");
    /// @dev Repairs and refurbishes items.
    bytes32 internal constant REPAIRER_ROLE = keccak256("REPAIRER_ROLE");
    /// @dev Anchors Merkle roots of EPCIS event batches (the ledger's anchoring worker).
    bytes32 internal constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");
    /// @dev Held by the ItemRegistry contract only: lets it draw grams from lots and create recovered lots.
    bytes32 internal constant LOT_MANAGER_ROLE = keccak256("LOT_MANAGER_ROLE");
}
