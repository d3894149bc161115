// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// The backfill bench's chain: SubscriptionPass's `Minted` event (same signature, so the listener decodes it with the
/// reference ABI) emitted in bulk, many per transaction, without quotes or payments.
contract MintedBurst {
    event Minted(bytes32 indexed orderId, address indexed payer, address token, uint256 amount, uint256 passId);

    function burst(uint256 first, uint256 count) external {
        for (uint256 i = first; i < first + count; i++) {
            emit Minted(bytes32(i), msg.sender, address(0), 1, i);
        }
    }
}
