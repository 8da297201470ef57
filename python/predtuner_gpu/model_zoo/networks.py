"""PredTuner's 10 zoo networks as torch.nn modules, with PredTuner's class names, module layout and
state_dict keys (so `load_state_dict(torch.load("model_params/vgg16_cifar10.pth.tar"))` works as in
its tutorial). The C zoo (zoo/zoo.c) builds the same graphs; tests/fixtures/make_zoo_reference.py
records these modules' names and shapes, and test_zoo checks the C zoo against them."""
from torch import nn

__all__ = ["LeNet", "AlexNet", "AlexNet2", "AlexNetImageNet", "VGG16Cifar10", "VGG16Cifar100", "VGG16ImageNet",
           "ResNet18", "ResNet50", "MobileNet", "NETS"]


def make_conv_pool_activ(cin, cout, k, activation=None, pool_size=None, pool_stride=None, **conv_kwargs):
    """Conv2d, optional MaxPool2d, optional activation: PredTuner's order."""
    layers = [nn.Conv2d(cin, cout, k, **conv_kwargs)]
    if pool_size is not None:
        layers.append(nn.MaxPool2d(pool_size, stride=pool_stride))
    if activation:
        layers.append(activation())
    return layers


cpa = make_conv_pool_activ


class Classifier(nn.Module):
    def __init__(self, convs, linears, use_softmax=False):
        super().__init__()
        self.convs = convs
        self.linears = linears
        self.softmax = nn.Softmax(1) if use_softmax else nn.Sequential()  # PredTuner's default: logits

    def forward(self, x):
        x = self.convs(x)
        return self.softmax(self.linears(x.view(x.shape[0], -1)))


class LeNet(Classifier):
    def __init__(self):
        super().__init__(nn.Sequential(*cpa(1, 32, 5, nn.Tanh, 2, padding=2), *cpa(32, 64, 5, nn.Tanh, 2, padding=2)),
                         nn.Sequential(nn.Linear(3136, 1024), nn.Tanh(), nn.Linear(1024, 10), nn.Tanh()))


class AlexNet(Classifier):
    def __init__(self):
        super().__init__(nn.Sequential(
            *cpa(3, 64, 11, nn.Tanh, 2, padding=5), *cpa(64, 192, 5, nn.Tanh, 2, padding=2),
            *cpa(192, 384, 3, nn.Tanh, padding=1), *cpa(384, 256, 3, nn.Tanh, padding=1),
            *cpa(256, 256, 3, nn.Tanh, 2, padding=1)), nn.Sequential(nn.Linear(4096, 10)))


class AlexNet2(Classifier):
    def __init__(self):
        ch = [3, 32, 32, 64, 64, 128, 128]
        layers = []
        for i in range(6):
            layers += cpa(ch[i], ch[i + 1], 3, nn.Tanh, 2 if i % 2 else None, padding=1)
        super().__init__(nn.Sequential(*layers), nn.Sequential(nn.Linear(2048, 10)))


class AlexNetImageNet(Classifier):
    def __init__(self):
        super().__init__(nn.Sequential(
            *cpa(3, 64, 11, nn.ReLU, 3, 2, padding=2, stride=4), *cpa(64, 192, 5, nn.ReLU, 3, 2, padding=2),
            *cpa(192, 384, 3, nn.ReLU, padding=1), *cpa(384, 256, 3, nn.ReLU, padding=1),
            *cpa(256, 256, 3, nn.ReLU, 3, 2, padding=1)),
            nn.Sequential(nn.Linear(9216, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000)))


class _VGG16(Classifier):
    def __init__(self, lin):
        ch = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
        pools = {1, 3, 6, 9, 12}
        layers = []
        for i in range(13):
            layers += cpa(ch[i], ch[i + 1], 3, nn.ReLU, 2 if i in pools else None, padding=1)
        lins = []
        for i in range(len(lin) - 1):
            lins.append(nn.Linear(lin[i], lin[i + 1]))
            if i + 2 < len(lin):
                lins.append(nn.ReLU())
        super().__init__(nn.Sequential(*layers), nn.Sequential(*lins))


class VGG16Cifar10(_VGG16):
    def __init__(self):
        super().__init__([512, 512, 10])


class VGG16Cifar100(_VGG16):
    def __init__(self):
        super().__init__([512, 512, 100])


class VGG16ImageNet(_VGG16):
    def __init__(self):
        super().__init__([25088, 4096, 4096, 1000])


class BasicBlock(nn.Module):
    def __init__(self, ins, outs, shortcut=False):
        super().__init__()
        s = 2 if shortcut else 1
        self.mainline = nn.Sequential(*cpa(ins, outs, 3, nn.ReLU, padding=1, stride=s), *cpa(outs, outs, 3, padding=1))
        self.relu1 = nn.ReLU()
        self.shortcut = nn.Sequential(*cpa(ins, outs, 1, stride=s)) if shortcut else nn.Sequential()

    def forward(self, x):
        return self.relu1(self.mainline(x) + self.shortcut(x))


class ResNet18(Classifier):
    def __init__(self):
        blocks = [BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 32, True),
                  BasicBlock(32, 32), BasicBlock(32, 32), BasicBlock(32, 64, True), BasicBlock(64, 64),
                  BasicBlock(64, 64)]
        super().__init__(nn.Sequential(*cpa(3, 16, 3, nn.ReLU, padding=1), *blocks, nn.AvgPool2d(8)),
                         nn.Sequential(nn.Linear(64, 10)))


class Bottleneck(nn.Module):
    def __init__(self, inp, planes, stride=1):
        super().__init__()
        self.mainline = nn.Sequential(
            *cpa(inp, planes, 1, stride=stride), nn.BatchNorm2d(planes, eps=0.001), nn.ReLU(),
            *cpa(planes, planes, 3, padding=1), nn.BatchNorm2d(planes, eps=0.001), nn.ReLU(),
            *cpa(planes, 4 * planes, 1), nn.BatchNorm2d(4 * planes, eps=0.001))
        self.relu1 = nn.ReLU()
        if stride != 1 or inp != 4 * planes:
            self.shortcut = nn.Sequential(*cpa(inp, 4 * planes, 1, stride=stride),
                                          nn.BatchNorm2d(4 * planes, eps=0.001))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x):
        return self.relu1(self.mainline(x) + self.shortcut(x))


class ResNet50(Classifier):
    def __init__(self):
        blocks, inp = [], 64
        for planes, n, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(n):
                blocks.append(Bottleneck(inp, planes, stride if i == 0 else 1))
                inp = 4 * planes
        super().__init__(nn.Sequential(*cpa(3, 64, 7, nn.ReLU, 3, 2, padding=3, stride=2),
                                       nn.BatchNorm2d(64, eps=0.001), *blocks, nn.AvgPool2d(7)),
                         nn.Sequential(nn.Linear(2048, 1000)))


class MobileNet(Classifier):
    def __init__(self):
        def seq(cin, cout, k, gs):
            return nn.Sequential(
                nn.Conv2d(cin, cout, k, bias=False, padding=(k - 1) // 2), nn.BatchNorm2d(cout, eps=0.001), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, bias=False, stride=gs, padding=1, groups=cout),
                nn.BatchNorm2d(cout, eps=0.001), nn.ReLU())
        cfg = [(3, 32, 3, 1), (32, 64, 1, 2), (64, 128, 1, 1), (128, 128, 1, 2), (128, 256, 1, 1), (256, 256, 1, 2),
               (256, 512, 1, 1), (512, 512, 1, 1), (512, 512, 1, 1), (512, 512, 1, 1), (512, 512, 1, 1),
               (512, 512, 1, 2), (512, 1024, 1, 1)]
        super().__init__(nn.Sequential(*[seq(*c) for c in cfg], nn.Conv2d(1024, 1024, 1, padding=0, bias=False),
                                       nn.BatchNorm2d(1024, eps=0.001), nn.ReLU(), nn.AvgPool2d(2)),
                         nn.Sequential(nn.Linear(1024, 10)))


# (C zoo name, module class, per-image input shape)
NETS = [("lenet_mnist", LeNet, (1, 28, 28)), ("alexnet_cifar10", AlexNet, (3, 32, 32)),
        ("alexnet2_cifar10", AlexNet2, (3, 32, 32)), ("vgg16_cifar10", VGG16Cifar10, (3, 32, 32)),
        ("vgg16_cifar100", VGG16Cifar100, (3, 32, 32)), ("resnet18_cifar10", ResNet18, (3, 32, 32)),
        ("mobilenet_cifar10", MobileNet, (3, 32, 32)), ("alexnet_imagenet", AlexNetImageNet, (3, 224, 224)),
        ("resnet50_imagenet", ResNet50, (3, 224, 224)), ("vgg16_imagenet", VGG16ImageNet, (3, 224, 224))]
