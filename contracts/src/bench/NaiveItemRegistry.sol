// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title NaiveItemRegistry
 * @notice Benchmark baseline only: one storage record per item at registration, the design that
 * `ItemRegistry.registerRun` replaces with one Merkle root per run.
 */
contract NaiveItemRegistry {
    struct Item {
        address brand;
        uint88 massGrams;
        uint8 state;
    }

    /// @dev Item `itemId` is registered already.
    error ItemAlreadyRegistered(bytes32 itemId);

    /// @dev `brand` registered `itemId`.
    event ItemRegistered(bytes32 indexed itemId, address indexed brand);

    mapping(bytes32 itemId => Item) public items;

    /**
     * @notice Registers every item in `itemIds` with its own storage record.
     *
     * Requirements:
     * - none of `itemIds` is registered.
     *
     * Emits an {ItemRegistered} event per item.
     */
    function registerAll(bytes32[] calldata itemIds, uint88 massGrams) external {
        for (uint256 i = 0; i < itemIds.length; ++i) {
            bytes32 itemId = itemIds[i];
            if (items[itemId].brand != address(0)) revert ItemAlreadyRegistered(itemId);
            items[itemId] = Item({brand: msg.sender, massGrams: massGrams, state: 1});
            emit ItemRegistered(itemId, msg.sender);
        }
    }
}
