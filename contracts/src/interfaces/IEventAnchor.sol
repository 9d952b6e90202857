// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @dev Merkle roots of anchored EPCIS event batches, and the EIP-712 domain in which actors sign events.
 */
interface IEventAnchor {
    /// @dev One anchored batch: who anchored it, when (block timestamp), and how many events it holds.
    struct Anchor {
        address anchorer;
        uint64 anchoredAt;
        uint32 eventCount;
    }

    /// @dev `root` is anchored already.
    error RootAlreadyAnchored(bytes32 root);
    /// @dev The zero root, or a batch of zero events, cannot be anchored.
    error EmptyBatch(bytes32 root, uint32 eventCount);
    /// @dev The signature of an event expired at `deadline`.
    error ExpiredEventSignature(uint256 deadline);

    /// @dev `anchorer` anchored `root`, the Merkle root of `eventCount` events.
    event RootAnchored(bytes32 indexed root, address indexed anchorer, uint32 eventCount);
    /// @dev The batch under `root` can be fetched at `uri`.
    event BatchLocated(bytes32 indexed root, string uri);

    function anchor(bytes32 root, uint32 eventCount) external;

    function anchorWithUri(bytes32 root, uint32 eventCount, string calldata uri) external;

    function anchorOf(bytes32 root) external view returns (Anchor memory);

    function verifyEvent(bytes32 root, bytes32 eventHash, bytes32[] calldata proof) external view returns (bool);

    function eventDigest(bytes32 eventHash, uint256 deadline) external view returns (bytes32);

    function recoverEventSigner(
        bytes32 eventHash,
        uint256 deadline,
        bytes calldata signature
    ) external view returns (address);
}
