// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Roles} from "./access/Roles.sol";
import {IEventAnchor} from "./interfaces/IEventAnchor.sol";

/**
 * @title EventAnchor
 * @notice Records Merkle roots of EPCIS event batches. A leaf is the SHA-256 digest inside an event's CBV 2.0 Event
 * Hash ID, as `bytes32`, hashed as OpenZeppelin's merkle-tree StandardMerkleTree does, so anyone can check an event
 * against an anchored root with public tools.
 *
 * It holds its own `ANCHORER_ROLE` (OpenZeppelin AccessControl) rather than asking the shared CircularAccess
 * registry: anchoring is the ledger's operational key, not a supply-chain actor, and a local role check saves the
 * external call (about 3,000 gas of the ~50,000 an anchor costs, i.e. 3 gas per event at a batch of 1,000).
 *
 * It is also the EIP-712 domain ("CircularLedger", "1") in which actors sign events:
 * `SignedEvent(bytes32 eventHash,uint256 deadline)`.
 */
contract EventAnchor is AccessControl, EIP712, IEventAnchor {
    using SafeCast for uint256;

    bytes32 public constant ANCHORER_ROLE = Roles.ANCHORER_ROLE;

    bytes32 private constant _SIGNED_EVENT_TYPEHASH = keccak256("SignedEvent(bytes32 eventHash,uint256 deadline)");

    mapping(bytes32 root => Anchor) private _anchors;

    /**
     * @param admin The account that holds `DEFAULT_ADMIN_ROLE` here and grants `ANCHORER_ROLE`.
     *
     * Emits a {RoleGranted} event.
     */
    constructor(address admin) EIP712("CircularLedger", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /**
     * @notice Anchors `root`, the Merkle root of a batch of `eventCount` events.
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE`;
     * - `root` is not zero and not anchored yet; `eventCount` is above zero.
     *
     * Emits a {RootAnchored} event.
     */
    function anchor(bytes32 root, uint32 eventCount) external onlyRole(ANCHORER_ROLE) {
        _anchor(root, eventCount);
    }

    /**
     * @notice Anchors `root` like {anchor} and records where the batch can be fetched. Kept apart from {anchor} so
     * that the common case pays nothing for the optional URI.
     *
     * Requirements: as {anchor}.
     *
     * Emits a {RootAnchored} and a {BatchLocated} event.
     */
    function anchorWithUri(bytes32 root, uint32 eventCount, string calldata uri) external onlyRole(ANCHORER_ROLE) {
        _anchor(root, eventCount);
        emit BatchLocated(root, uri);
    }

    /// @notice The anchor record of `root` (a zero anchorer when it is not anchored).
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /**
     * @notice Whether `eventHash` is a leaf of the anchored root `root`, by `proof` (OpenZeppelin MerkleProof).
     */
    function verifyEvent(bytes32 root, bytes32 eventHash, bytes32[] calldata proof) external view returns (bool) {
        if (_anchors[root].anchorer == address(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(eventHash))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    function _anchor(bytes32 root, uint32 eventCount) private {
        if (root == bytes32(0) || eventCount == 0) revert EmptyBatch(root, eventCount);
        if (_anchors[root].anchorer != address(0)) revert RootAlreadyAnchored(root);
        _anchors[root] = Anchor({anchorer: msg.sender, anchoredAt: block.timestamp.toUint64(), eventCount: eventCount});
        emit RootAnchored(root, msg.sender, eventCount);
    }

    /// @notice The EIP-712 digest an actor signs for event `eventHash`, valid until `deadline`.
    function eventDigest(bytes32 eventHash, uint256 deadline) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(_SIGNED_EVENT_TYPEHASH, eventHash, deadline)));
    }

    /**
     * @notice The account that signed event `eventHash` with `deadline`.
     *
     * Requirements:
     * - `deadline` has not passed;
     * - `signature` is a valid, non-malleable (low-s) ECDSA signature: otherwise OpenZeppelin's
     *   {ECDSA-ECDSAInvalidSignature}, {ECDSA-ECDSAInvalidSignatureLength} or {ECDSA-ECDSAInvalidSignatureS}.
     */
    function recoverEventSigner(
        bytes32 eventHash,
        uint256 deadline,
        bytes calldata signature
    ) external view returns (address) {
        // Deadlines bound how long a signed event may be submitted; they are seconds-scale, so miner drift is harmless.
        // slither-disable-next-line timestamp
        if (deadline < block.timestamp) revert ExpiredEventSignature(deadline);
        return ECDSA.recover(eventDigest(eventHash, deadline), signature);
    }
}
