{-# LANGUAGE DeriveGeneric #-}
-- | The Haskell types of the Rust counter's messages:
--
-- > enum CounterMsg { Add(Increment), #[rpc] Get(RpcReplyPort<Count>) }
module Kaisui.Counter
  ( Add (..)
  , Get (..)
  , GetReply (..)
  ) where

import Control.Distributed.Process (ProcessId)
import Data.Binary (Binary)
import Data.ByteString (ByteString)
import GHC.Generics (Generic)

-- | @CounterMsg::Add(Increment)@, a cast.
data Add = Add !ByteString
  deriving (Show, Generic)

instance Binary Add

-- | @CounterMsg::Get(_)@, a call without arguments: only whom to answer.
data Get = Get !ProcessId
  deriving (Show, Generic)

instance Binary Get

-- | The reply to a 'Get': a Count.
newtype GetReply = GetReply ByteString
  deriving (Show, Generic)

instance Binary GetReply
